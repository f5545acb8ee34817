"""
A large recording exported by GetSessionRecordingOperator is streamed, never held whole, whatever its shape (50 MB
of user activity, a 100 MB crash log that is one JSON string, a million tiny timeline events): the peak RSS of a
child process running the export grows by less than 20 MB over the same export of a small recording.

The child runs ``execute`` exactly as a task would, against the simulator in this process (over HTTP on
127.0.0.1), and reports its own peak RSS (``VmHWM`` of ``/proc/self/status``, read before anything else is
done) and the SHA-256 of what it stored, which must equal the simulator's bytes. A bound, not a timing. Not
``ru_maxrss``: on Linux a child's starts at its parent's RSS when it was spawned, so a test process of 330 MB
(pytest, Airflow, a simulator) hid any child below that.

With ``memory://`` the stored object lives in the child's own memory by definition (and fsspec's memory
filesystem moves a file by copying it, so at the publishing rename it holds two copies), so there the baseline
is a child that publishes the same number of bytes to the same store the same way, without DevRev: what the
export adds over that must stay under the same 20 MB.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from airflow_provider_devrev.testing import DevRevSimulator

VERSION = "com.example.app@1.0.0"
LARGE = 50_000_000
LONG_LOG = 100_000_000
TINY_EVENTS = 1_000_000
#: A frame event is ``{"event_name":"frame","timestamp_offset_ms":N},``: 50 to 54 bytes for a million of them.
TINY_EVENT_BYTES = 54
BOUND_KIB = 20 * 1024

CHILD = r"""
import hashlib, json, sys

args = json.loads(sys.argv[1])
if args["output_path"].startswith("memory://"):
    from fsspec.implementations.memory import MemoryFileSystem
    try:
        from airflow.sdk.io import attach
    except ImportError:  # Airflow 2.11
        from airflow.io.store import attach
    attach(protocol="memory", fs=MemoryFileSystem())
from airflow.providers.common.compat.sdk import ObjectStoragePath
from airflow_provider_devrev._storage import published_atomically
from airflow_provider_devrev.operators.devrev import GetSessionRecordingOperator

if args.get("store_only"):
    # The store's own cost: the same bytes published the same way, without DevRev or a network (with the same
    # modules loaded as an export loads, so that only the export itself differs).
    import requests
    import airflow_provider_devrev.hooks._json_scan
    from airflow_provider_devrev.hooks.devrev import DevRevHook

    DevRevHook(args["conn_id"]).settings
    with published_atomically(args["output_path"], "wb") as (stream, target):
        left = args["store_only"]
        while left:
            stream.write(b"x" * min(left, 1 << 16))
            left -= min(left, 1 << 16)
    result = {"path": target, "bytes": args["store_only"]}
else:
    task = GetSessionRecordingOperator(
        task_id="export",
        session_id=args["session_id"],
        version_key=args["version_key"],
        recording_id=args["recording_id"],
        output_path=args["output_path"],
    )
    result = task.execute({})
with open("/proc/self/status") as status:
    [peak_kib] = [int(line.split()[1]) for line in status if line.startswith("VmHWM:")]
digest = hashlib.sha256()
with ObjectStoragePath(result["path"]).open("rb") as stored:
    while chunk := stored.read(1 << 20):
        digest.update(chunk)
print("RESULT " + json.dumps({"peak_kib": peak_kib, "result": result, "sha256": digest.hexdigest()}))
"""


@pytest.fixture(scope="module")
def sim():
    with DevRevSimulator(seed_data=False) as simulator:
        for name in ("small", "large"):
            session = simulator.make_session("mobile", platform="android", session_id=name, is_crash=True)
            simulator.add_session({**session, "recording_ids": ["rec"]}, version_key=VERSION)
        simulator.inflate_recording("large", LARGE)
        for name in ("long-log", "tiny-events"):
            session = simulator.make_session("mobile", platform="android", session_id=name, is_crash=True)
            simulator.add_session({**session, "recording_ids": ["rec"]}, version_key=VERSION)
        simulator.inflate_recording("long-log", LONG_LOG, shape="crash_log")
        simulator.inflate_recording("tiny-events", TINY_EVENTS * TINY_EVENT_BYTES, shape="tiny_events")
        yield simulator


@pytest.fixture(scope="module")
def large_sha256(sim) -> str:
    digest = hashlib.sha256()
    for chunk in sim.recording_chunks("large", VERSION, recording_id="rec"):
        digest.update(chunk)
    return digest.hexdigest()


def served(sim: DevRevSimulator, session_id: str) -> tuple[str, int, int]:
    """The SHA-256 of the body the simulator serves, its size, and how many tiny frame events it holds."""
    digest = hashlib.sha256()
    size = frames = 0
    for chunk in sim.recording_chunks(session_id, VERSION, recording_id="rec"):
        digest.update(chunk)
        size += len(chunk)
        # The generator never splits an event between chunks.
        frames += chunk.count(b'{"event_name":"frame",')
    return digest.hexdigest(), size, frames


def export_in_a_child(
    sim: DevRevSimulator, session_id: str, output_path: str, *, store_only: int = 0
) -> dict[str, Any]:
    args = {"session_id": session_id, "version_key": VERSION, "recording_id": "rec", "output_path": output_path}
    args["store_only"] = store_only
    args["conn_id"] = "devrev_default"
    env = {**os.environ, "AIRFLOW_CONN_DEVREV_DEFAULT": sim.connection_json()}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(args)], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [line] = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    report: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    return report


@pytest.mark.parametrize("where", ["local path", "memory://"])
def test_a_50_mb_recording_is_streamed_to_storage_in_bounded_memory(sim, large_sha256, tmp_path, where):
    def target(name: str) -> str:
        return str(tmp_path / f"{name}.json") if where == "local path" else f"memory://devrev-rss/{name}.json"

    large = export_in_a_child(sim, "large", target("large"))
    size = large["result"]["bytes"]
    if where == "local path":
        baseline = export_in_a_child(sim, "small", target("small"))  # an export of a few KB
    else:
        baseline = export_in_a_child(sim, "small", target("store-only"), store_only=size)

    assert size >= LARGE
    assert large["result"]["recording"] == "mobile_recording"
    assert large["sha256"] == large_sha256, "the stored bytes are the simulator's"
    growth_kib = large["peak_kib"] - baseline["peak_kib"]
    print(f"\n{where}: peak RSS {baseline['peak_kib']} KiB (baseline), {large['peak_kib']} KiB (50 MB export)")
    assert growth_kib < BOUND_KIB
    if where == "local path":
        assert (tmp_path / "large.json").stat().st_size == size
        assert sorted(p.name for p in tmp_path.iterdir()) == ["large.json", "small.json"]


@pytest.mark.parametrize("shape", ["crash_log", "tiny_events"])
def test_a_recording_of_any_shape_is_streamed_to_a_file_in_bounded_memory(sim, tmp_path, shape):
    session_id = "long-log" if shape == "crash_log" else "tiny-events"
    sha256, size, frames = served(sim, session_id)
    # tests/testing/test_simulator.py checks what the shapes are, on smaller recordings.
    if shape == "crash_log":
        assert size > LONG_LOG
    else:
        assert frames >= TINY_EVENTS

    large = export_in_a_child(sim, session_id, str(tmp_path / "large.json"))
    baseline = export_in_a_child(sim, "small", str(tmp_path / "small.json"))  # an export of a few KB

    assert large["result"]["bytes"] == size
    assert large["result"]["recording"] == "mobile_recording"
    assert large["sha256"] == sha256, "the stored bytes are the simulator's"
    growth_kib = large["peak_kib"] - baseline["peak_kib"]
    print(f"\n{shape}: peak RSS {baseline['peak_kib']} KiB (baseline), {large['peak_kib']} KiB ({size} bytes)")
    assert growth_kib < BOUND_KIB
