"""A day's export to a file is exact in every simulator cursor mode and order, with sessions uploaded and deleted
while it lists (the hook's own listings are tested in tests/hooks/test_exact_listing.py)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pendulum
import pytest

from airflow_provider_devrev.operators.devrev import ListSessionsOperator
from airflow_provider_devrev.testing import DevRevSimulator

VERSION = "com.example.app@2.0.0"
DAY = datetime(2026, 4, 1, tzinfo=UTC)
CONTEXT = {"data_interval_start": pendulum.instance(DAY), "data_interval_end": pendulum.instance(DAY + timedelta(1))}
STYLES = [(mode, order) for mode in ("keyset", "keyset_no_tiebreak", "offset") for order in ("asc", "desc")]


def add(sim: DevRevSimulator, session_id: str, minute: int) -> None:
    moment = DAY + timedelta(minutes=minute)
    session = sim.make_session("mobile", platform="android", session_id=session_id, created_at=moment)
    sim.add_session(session, version_key=VERSION)


@pytest.mark.parametrize(("mode", "order"), STYLES, ids=["-".join(style) for style in STYLES])
def test_the_export_file_holds_every_lasting_session_once_and_none_twice(mode, order, tmp_path, monkeypatch):
    with DevRevSimulator(seed_data=False, cursor_mode=mode, order=order, page_size=6) as sim:
        monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", sim.connection_json())
        # 60 sessions on 20 instants (three at each), so page boundaries fall inside instants; a session of the
        # day before and one of the day after, which the file must not hold.
        lasting = [f"s{n:02d}" for n in range(60)]
        for number, session_id in enumerate(lasting):
            add(sim, session_id, 10 * (number // 3))
        add(sim, "yesterday", -1)
        add(sim, "tomorrow", 24 * 60)
        doomed = ["s07", "s31", "s52"]
        uploads = {2: [("late-a", 0), ("late-b", 95)], 4: [("late-c", 100), ("late-d", 185)], 6: [("late-e", 30)]}
        deletes = {3: doomed[:2], 5: doomed[2:]}

        def mid_listing(number: int) -> None:
            for session_id, minute in uploads.get(number, []):
                add(sim, session_id, minute)
            for session_id in deletes.get(number, []):
                sim.remove_session(session_id)

        sim.on_page(mid_listing)
        target = tmp_path / "day.jsonl"
        result = ListSessionsOperator(
            task_id="export",
            platform="android",
            version_key=VERSION,
            output_path=target.as_uri(),
            settle=timedelta(0),
        ).execute(CONTEXT)

    written = [json.loads(line)["session_id"] for line in target.read_text().splitlines()]
    counts = Counter(written)
    assert result["count"] == len(written)
    assert {sid for sid in set(lasting) - set(doomed) if counts[sid] != 1} == set(), "present all along: once"
    assert {sid for sid, count in counts.items() if count > 1} == set(), "uploaded or deleted meanwhile: at most once"
    assert set(written) <= set(lasting) | {f"late-{c}" for c in "abcde"}, "nothing from outside the interval"
