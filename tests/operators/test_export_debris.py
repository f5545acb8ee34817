"""
A killed export leaves nothing behind once its target is exported again (issue 28).

An export runs in a subprocess (the real operator, against the simulator over HTTP); the simulator holds one of
its list pages until the test lets it go, so the test knows the export is mid-write (its partial file created, or
its multipart upload started) when it sends SIGKILL: no sleeps, no timing. The rerun is the same operator.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_devrev.operators.devrev import ListSessionsOperator

VERSION = "com.example.app@1.0.0"
DAY = datetime(2026, 3, 1, tzinfo=UTC)
BOUNDS = {"created_after": DAY.isoformat(), "created_before": (DAY + timedelta(days=1)).isoformat()}
PAGE = 100
#: How long a held page or a child may take before the test gives up on it (a failure, never a pass).
PATIENCE = 120

pytestmark = pytest.mark.devrev_simulator(seed_data=False)

CHILD = """
import json, os, sys
from datetime import timedelta
if os.environ.get("TEST_S3_BLOCK_SIZE"):
    # s3fs starts a multipart upload once a block is full: 5 MiB (S3's smallest part) instead of 50 MiB keeps
    # the day the test serves small.
    import s3fs
    s3fs.S3FileSystem.default_block_size = int(os.environ["TEST_S3_BLOCK_SIZE"])
from airflow_provider_devrev.operators.devrev import ListSessionsOperator
bounds = json.loads(sys.argv[3])
operator = ListSessionsOperator(task_id="export", platform="android", version_key=sys.argv[1], output_path=sys.argv[2],
                                page_size=int(sys.argv[4]), settle=timedelta(0), **bounds)
print(json.dumps(operator.execute({})))
"""


def add_day(sim, count: int, *, padding: int = 0) -> set[str]:
    ids = set()
    for number in range(count):
        session = sim.make_session("mobile", session_id=f"s-{number:05d}", created_at=DAY + timedelta(seconds=number))
        if padding:
            session["padding"] = "x" * padding
        ids.add(sim.add_session(session, version_key=VERSION)["session_id"])
    return ids


class HeldExport:
    """An export in a subprocess whose list page ``held_page`` the simulator holds until :meth:`release`."""

    def __init__(self, sim, output_path: str, held_page: int, env: dict[str, str]) -> None:
        self.reached = threading.Event()
        self._release = threading.Event()
        # Requests are numbered from the simulator's start; the child's are the next ones.
        sim.at_request(len(sim.requests) + held_page, self._hold)
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, VERSION, output_path, json.dumps(BOUNDS), str(PAGE)],
            env={**os.environ, "AIRFLOW_CONN_DEVREV_DEFAULT": sim.connection_json(), **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def _hold(self) -> None:
        self.reached.set()
        self._release.wait(PATIENCE)

    def wait_until_held(self) -> None:
        assert self.reached.wait(PATIENCE), self.process.communicate(timeout=PATIENCE)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(PATIENCE) == -signal.SIGKILL
        self.release()

    def release(self) -> None:
        self._release.set()

    def finish(self) -> dict[str, Any]:
        self.release()
        out, err = self.process.communicate(timeout=PATIENCE)
        assert self.process.returncode == 0, err.decode(errors="replace")[-3000:]
        return json.loads(out.decode().strip().splitlines()[-1])


@pytest.fixture
def held() -> Iterator[list[HeldExport]]:
    started: list[HeldExport] = []
    yield started
    for export in started:  # a failed test must not leave a child behind
        if export.process.poll() is None:
            export.process.kill()
            export.process.wait(PATIENCE)
        export.release()


def rerun(output_path: str) -> dict[str, Any]:
    operator = ListSessionsOperator(
        task_id="export",
        platform="android",
        version_key=VERSION,
        output_path=output_path,
        page_size=PAGE,
        settle=timedelta(0),
        **BOUNDS,
    )
    return operator.execute({})


def partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


def ids_in(text: str) -> list[str]:
    return [json.loads(line)["session_id"] for line in text.splitlines()]


def test_a_rerun_removes_the_partial_file_a_killed_export_left(devrev_simulator, tmp_path, held):
    expected = add_day(devrev_simulator, 3 * PAGE)
    target = tmp_path / "day.jsonl"
    export = HeldExport(devrev_simulator, str(target), held_page=3, env={})
    held.append(export)
    export.wait_until_held()
    assert re.fullmatch(r"\[?'\.day\.jsonl\.[0-9a-f]{32}\.partial'\]?", str(partials(tmp_path))), partials(tmp_path)

    export.kill()
    assert len(partials(tmp_path)) == 1, "the killed export left its partial file (what the rerun must clear)"
    assert not target.exists()

    assert rerun(str(target)) == {"path": target.as_uri(), "count": len(expected)}
    assert partials(tmp_path) == []
    written = ids_in(target.read_text(encoding="utf-8"))
    assert sorted(written) == sorted(expected)


def test_a_rerun_keeps_the_partial_file_of_a_concurrent_writer_and_of_other_targets(devrev_simulator, tmp_path, held):
    expected = add_day(devrev_simulator, 2 * PAGE)
    target = tmp_path / "day.jsonl"
    hex_ = "0123456789abcdef" * 2
    # Debris of other targets, dead (no writer holds them): not this target's to remove.
    others = [f".day.jsonl.x.{hex_}.partial", f".other.jsonl.{hex_}.partial", f".day.jsonl.{hex_[:31]}.partial"]
    for name in others:
        (tmp_path / name).write_text("{}\n")
    export = HeldExport(devrev_simulator, str(target), held_page=2, env={})
    held.append(export)
    export.wait_until_held()
    writing = [name for name in partials(tmp_path) if name not in others]
    assert len(writing) == 1

    assert rerun(str(target))["count"] == len(expected)  # runs while the other writer waits for its page

    assert partials(tmp_path) == sorted([*others, *writing]), "a live writer's file or another target's was removed"
    assert export.finish() == {"path": target.as_uri(), "count": len(expected)}
    # The writer that finished last published its whole file; its partial went with the rename.
    assert partials(tmp_path) == sorted(others)
    assert sorted(ids_in(target.read_text(encoding="utf-8"))) == sorted(expected)


@pytest.fixture
def s3(monkeypatch):
    pytest.importorskip("s3fs", reason="s3:// needs s3fs and the Amazon provider: the 3.3.2 leg installs them")
    pytest.importorskip("airflow.providers.amazon")
    pytest.importorskip("moto.server")
    from tests.objectstore import aws_connection_json, s3_server

    with s3_server() as client:
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection_json(client))
        yield client


def test_a_rerun_aborts_the_multipart_upload_a_killed_export_left_on_s3(devrev_simulator, s3, held):
    from tests.objectstore import BUCKET, pending_uploads

    # 100 sessions of about 60 KB: the first page alone fills a 5 MiB block, so the upload has begun (and a
    # part been sent) when the second page is held.
    expected = add_day(devrev_simulator, PAGE + 50, padding=60_000)
    key = "devrev/2026-03-01/day.jsonl"
    output_path = f"s3://aws_default@{BUCKET}/{key}"
    # Another key's unfinished upload (its key begins with this one's): not this target's to abort.
    s3.create_multipart_upload(Bucket=BUCKET, Key=key + ".bak")
    export = HeldExport(devrev_simulator, output_path, held_page=2, env={"TEST_S3_BLOCK_SIZE": str(5 * 2**20)})
    held.append(export)
    export.wait_until_held()
    assert sorted(pending_uploads(s3)) == [key, key + ".bak"]

    export.kill()
    assert sorted(pending_uploads(s3)) == [key, key + ".bak"], "the killed export's upload (what the rerun aborts)"
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=key)

    assert rerun(output_path) == {"path": output_path, "count": len(expected)}
    assert pending_uploads(s3) == [key + ".bak"]
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode("utf-8")
    assert sorted(ids_in(body)) == sorted(expected)
