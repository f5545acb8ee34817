"""GetSessionsOperator against the simulator: order, duplicates, missing ids, the XCom cap, a rate limit."""

from __future__ import annotations

import errno
import json
import resource
import signal

import pytest

from airflow_provider_devrev._compat import AirflowFailException
from airflow_provider_devrev.exceptions import DevRevAuthError, DevRevInvalidInputError, DevRevNotFoundError
from airflow_provider_devrev.operators.devrev import GetSessionsOperator

VERSION = "com.example.app@1.0.0"
GET = "/observability.sessions.get"

pytestmark = pytest.mark.devrev_simulator(seed_data=False)


def add(sim, *ids, platform="android"):
    return {
        sid: sim.add_session(sim.make_session("mobile", platform=platform, session_id=sid), version_key=VERSION)
        for sid in ids
    }


def op(**kwargs):
    kwargs.setdefault("platform", "android")
    return GetSessionsOperator(task_id="sessions", version_key=VERSION, max_retries=0, **kwargs)


def test_sessions_come_back_in_the_order_given_each_id_once(devrev_simulator):
    stored = add(devrev_simulator, "a", "b", "c")

    result = op(session_ids=["c", "a", "b", "a", "c"]).execute({})

    assert result == [stored["c"], stored["a"], stored["b"]]
    assert sorted(r.session_id for r in devrev_simulator.requests_for(path=GET)) == ["a", "b", "c"]


def test_a_missing_id_fails_the_task(devrev_simulator):
    add(devrev_simulator, "a")

    with pytest.raises(DevRevNotFoundError):
        op(session_ids=["a", "gone"]).execute({})


def test_skip_missing_leaves_missing_ids_out(devrev_simulator):
    stored = add(devrev_simulator, "a", "c")

    result = op(session_ids=["gone-1", "a", "gone-2", "c"], skip_missing=True).execute({})

    assert result == [stored["a"], stored["c"]]


def test_a_list_above_max_xcom_bytes_is_refused_and_says_to_set_output_path(devrev_simulator):
    stored = add(devrev_simulator, *(f"s{n}" for n in range(10)))
    size = len(json.dumps(list(stored.values()), ensure_ascii=False, separators=(",", ":")).encode())

    assert len(op(session_ids=list(stored), max_xcom_bytes=size).execute({})) == 10
    with pytest.raises(AirflowFailException, match=rf"max_xcom_bytes={size - 1}.*set output_path"):
        op(session_ids=list(stored), max_xcom_bytes=size - 1).execute({})


def test_output_path_writes_json_lines_in_order(devrev_simulator, tmp_path):
    stored = add(devrev_simulator, "a", "b", "c")
    target = tmp_path / "out" / "sessions.jsonl"

    result = op(session_ids=["b", "a", "c"], output_path=str(target), max_xcom_bytes=1).execute({})

    assert result == {"path": target.as_uri(), "bytes": target.stat().st_size, "count": 3}
    lines = target.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [stored["b"], stored["a"], stored["c"]]
    assert [p.name for p in target.parent.iterdir()] == ["sessions.jsonl"]


@pytest.mark.devrev_simulator(seed_data=False, rate_limit=(8, 0.5))
def test_under_a_rate_limit_every_session_arrives_in_order(devrev_simulator):
    ids = [f"s{n:02d}" for n in range(40)]
    stored = add(devrev_simulator, *ids)

    result = op(session_ids=list(reversed(ids)), max_concurrency=8).execute({})

    assert result == [stored[sid] for sid in reversed(ids)]
    requests = devrev_simulator.requests_for(path=GET)
    assert [r.status for r in requests].count(200) == 40
    # 40 answers at 8 per 0.5 s window span at least 5 windows: paced (by the shared rate limit, which reads
    # X-Ratelimit-Remaining before any 429, or by 429s), not failed.
    times = sorted(r.time for r in requests if r.status == 200)
    assert times[-1] - times[0] >= 0.5 * (40 // 8 - 1), "the limit was reached, and paced rather than failed"


def test_session_ids_as_text_is_refused(devrev_simulator):
    with pytest.raises(DevRevInvalidInputError, match="session_ids"):
        op(session_ids="a,b")
    task = op(session_ids="{{ params.ids }}")
    task.session_ids = "['a', 'b']"  # what rendering without render_template_as_native_obj produces

    with pytest.raises(DevRevInvalidInputError, match="XComArg"):
        task.execute({})
    assert devrev_simulator.requests == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"platform": "windows", "session_ids": ["a"]}, "platform"),
        ({"session_ids": ["a", ""]}, "session_ids"),
        ({"session_ids": ["a"], "max_concurrency": 0}, "max_concurrency"),
        ({"session_ids": ["a"], "max_xcom_bytes": -1}, "max_xcom_bytes"),
    ],
)
def test_literal_bad_arguments_fail_when_the_dag_is_parsed(kwargs, field):
    with pytest.raises(DevRevInvalidInputError, match=field):
        op(**kwargs)


def test_template_fields():
    assert set(GetSessionsOperator.template_fields) >= {"platform", "version_key", "session_ids", "output_path"}


# -- output_path: published only once complete ---------------------------------------------------------------


def jsonl_size(sessions) -> int:
    """Bytes of the JSON Lines file the operator writes for ``sessions``."""
    return sum(len(json.dumps(s, ensure_ascii=False, separators=(",", ":")).encode()) + 1 for s in sessions)


def previous_export(sim, target) -> bytes:
    """A complete earlier export at ``target``, for a failed rerun to leave alone."""
    add(sim, "old-1", "old-2")
    op(session_ids=["old-1", "old-2"], output_path=str(target)).execute({})
    return target.read_bytes()


def test_a_rerun_that_fails_while_fetching_leaves_the_previous_file_whole(devrev_simulator, tmp_path):
    sim = devrev_simulator
    target = tmp_path / "sessions.jsonl"
    before = previous_export(sim, target)
    ids = list(add(sim, *(f"s{n:02d}" for n in range(20))))
    # The 13th id fails for good: a revoked token, say, after twelve sessions had come back.
    sim.add_fault("revoked", session_id="s12")

    with pytest.raises(DevRevAuthError):
        op(session_ids=ids, output_path=str(target), max_concurrency=2).execute({})

    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["sessions.jsonl"], "no partial file left beside it"


@pytest.fixture
def file_size_limit():
    """
    ``limit(n)``: from then on until the test ends, this process cannot write a file beyond ``n`` bytes (the
    kernel's RLIMIT_FSIZE): a real write error half way through a file, as a full disk or quota gives.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    # Without this, the kernel's SIGXFSZ kills the process instead of failing the write with EFBIG.
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def limit(size: int) -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))

    try:
        yield limit
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def test_a_write_that_fails_half_way_publishes_nothing_and_keeps_the_previous_file(
    devrev_simulator, tmp_path, file_size_limit
):
    sim = devrev_simulator
    target = tmp_path / "sessions.jsonl"
    before = previous_export(sim, target)
    stored = add(sim, *(f"s{n:02d}" for n in range(40)))
    whole = jsonl_size(stored.values())
    file_size_limit(whole // 2)

    with pytest.raises(OSError, match="File too large") as caught:
        op(session_ids=list(stored), output_path=str(target)).execute({})

    assert caught.value.errno == errno.EFBIG, "the write failed half way, as meant"
    assert len(before) < whole // 2 < whole
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["sessions.jsonl"], "no partial file left beside it"
