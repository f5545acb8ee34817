"""
Recording export: throughput and peak memory of ``GetSessionRecordingOperator`` streaming a large recording to a
file, against the floor (a raw ``requests`` streaming copy) and the whole-body path (``get_session_recording`` +
``json.dump``).

Run from the repository root: ``python -m bench.recording_export [--mb 50] [--rounds 3] [--shape activity]``;
prints one markdown table. ``--shape`` is how the recording is made large (``inflate_recording``'s shapes):
``activity`` (more timeline events of the usual size), ``crash_log`` (one JSON string of that size) or
``tiny_events`` (frame events of about 50 bytes: 54 MB is a million of them). Not part of ``python -m bench``:
its figures were pasted into ``docs/benchmarks.md`` by hand.

The body is a recording the simulator generates (``inflate_recording``), written once to a temporary file and
served by a minimal static HTTP server in a process of its own (the simulator generates recordings at a few MB/s
and would be what is measured). Each export runs in a fresh process, which reports its wall time for the export
alone and its peak RSS (``VmHWM``: a child's ``ru_maxrss`` starts at its parent's RSS); "over baseline"
subtracts the peak of the same process exporting a recording of a few KB. A second table times the JSON check
alone, the provider's scanner against ijson (what checked recordings before it), each fed the body from the file
in 64 KiB chunks in a fresh process. The machine is shared and busy: compare contenders within one run, not
absolute figures.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TOKEN = "bench-recording-token-0123456789"
VERSION_KEY = "bench@1.0.0"
CONTENDERS = {
    "operator": "`GetSessionRecordingOperator(output_path=...)`: streamed, JSON checked, published atomically",
    "raw": "raw `requests` streaming copy (`iter_content` to a file): the floor",
    "whole": "`get_session_recording()` then `json.dump` to a file: the whole body in memory",
}

SHAPES = {
    "activity": "more user activity",
    "crash_log": "its crash log one string of that size",
    "tiny_events": "a timeline of tiny frame events",
}


# -- the server (a process of its own) ---------------------------------------------------------------------------


def serve(body_file: str, small_file: str) -> None:
    """Answer every request with one of two bodies (``recording_id=small`` picks the small one); print the port."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = small_file if "recording_id=small" in self.path else body_file
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(os.path.getsize(path)))
            self.end_headers()
            with open(path, "rb") as source:
                shutil.copyfileobj(source, self.wfile, 1 << 20)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(json.dumps({"port": server.server_port}), flush=True)
    server.serve_forever()


# -- one export (a fresh process each) ---------------------------------------------------------------------------


def export(contender: str, url: str, recording_id: str, out: str) -> None:
    """Export once with ``contender`` and print ``{wall, peak_kib, bytes}``."""
    os.environ["AIRFLOW_CONN_DEVREV_DEFAULT"] = json.dumps({"conn_type": "devrev", "host": url, "password": TOKEN})
    import requests

    from airflow_provider_devrev.hooks.devrev import DevRevHook
    from airflow_provider_devrev.operators.devrev import GetSessionRecordingOperator

    args = {"session_id": "bench-session", "version_key": VERSION_KEY, "recording_id": recording_id}
    # The connection is read before the clock starts: the export is what is measured.
    task = GetSessionRecordingOperator(task_id="export", output_path=out, **args)
    task.hook.settings  # noqa: B018
    hook = DevRevHook()
    hook.settings  # noqa: B018
    started, cpu_started = time.perf_counter(), time.process_time()
    if contender == "operator":
        size = task.execute({})["bytes"]
    elif contender == "whole":
        recording = hook.get_session_recording(**args)  # type: ignore[arg-type]
        with open(out, "w", encoding="utf-8") as target:
            json.dump(recording, target, ensure_ascii=False, separators=(",", ":"))
        size = os.path.getsize(out)
    else:
        size = 0
        query = {**args, "recording_id": recording_id}
        data_url = f"{url}/observability.sessions.data.get"
        with requests.get(data_url, params=query, stream=True, timeout=60) as answer, open(out, "wb") as target:
            for chunk in answer.iter_content(1 << 16):
                target.write(chunk)
                size += len(chunk)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    peak = peak_kib()
    print("RESULT " + json.dumps({"wall": wall, "cpu": cpu, "peak_kib": peak, "bytes": size}), flush=True)


def peak_kib() -> int:
    """This process's peak RSS in KiB (``VmHWM``; Linux)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


def check(checker: str, body: str) -> None:
    """Check ``body`` (a file) with ``checker`` alone and print ``{cpu, peak_kib}``."""
    chunks = iter(functools.partial(open(body, "rb").read, 1 << 16), b"")  # noqa: SIM115 (read to the end)
    if checker == "ijson":
        import ijson

        found = ijson.sendable_list()
        parser = ijson.items_coro(found, "recording")
        feed, finish = parser.send, parser.close
    else:
        from airflow_provider_devrev.hooks._json_scan import JsonScanner

        scanner = JsonScanner("recording")
        feed, finish = scanner.feed, scanner.finish
    started = time.process_time()
    for chunk in chunks:
        feed(chunk)
    finish()
    print("RESULT " + json.dumps({"cpu": time.process_time() - started, "peak_kib": peak_kib()}), flush=True)


def check_table(large: Path, small: Path) -> str:
    rows = ["| JSON check alone | MB/s (CPU) | peak RSS over a few-KB check |", "|---|---|---|"]
    size = large.stat().st_size
    for checker, label in (("scanner", "`hooks/_json_scan.py` (the provider's)"), ("ijson", "ijson 3 (yajl2_c)")):
        done = run_child(["--check", checker, str(large)])
        base = run_child(["--check", checker, str(small)])
        over = (done["peak_kib"] - base["peak_kib"]) / 1024
        rows.append(f"| {label} | {size / 1e6 / done['cpu']:.0f} | {over:+.1f} MiB |")
    return "\n".join(rows)


# -- the measurement ---------------------------------------------------------------------------------------------


def make_bodies(folder: Path, mb: int, shape: str) -> tuple[Path, Path]:
    """A recording of at least ``mb`` MB in ``shape`` and one of a few KB, from the simulator's generator."""
    from airflow_provider_devrev.testing import DevRevSimulator

    sim = DevRevSimulator(seed_data=False)
    session = sim.make_session("mobile", platform="android", session_id="bench-session", is_crash=True)
    sim.add_session({**session, "recording_ids": ["small", "large"]}, version_key=VERSION_KEY)
    small = folder / "small.json"
    small.write_bytes(b"".join(sim.recording_chunks("bench-session", VERSION_KEY, recording_id="small")))
    sim.inflate_recording("bench-session", mb * 1_000_000, shape=shape)
    large = folder / "large.json"
    with large.open("wb") as target:
        for chunk in sim.recording_chunks("bench-session", VERSION_KEY, recording_id="large"):
            target.write(chunk)
    return large, small


def run_child(args: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.recording_export", *args], capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    return result


def measure(mb: int, rounds: int, shape: str) -> str:
    with tempfile.TemporaryDirectory(prefix="devrev-bench-recording-") as tmp:
        folder = Path(tmp)
        large, small = make_bodies(folder, mb, shape)
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.recording_export", "--serve", str(large), str(small)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            port = json.loads(server.stdout.readline())["port"]
            url = f"http://127.0.0.1:{port}"
            results: dict[str, list[dict[str, Any]]] = {name: [] for name in CONTENDERS}
            baselines: dict[str, list[int]] = {name: [] for name in CONTENDERS}
            for round_number in range(rounds):
                order = list(CONTENDERS)[round_number % 3 :] + list(CONTENDERS)[: round_number % 3]
                for name in order:
                    out = str(folder / f"{name}.out")
                    results[name].append(run_child(["--export", name, url, "large", out]))
                    baselines[name].append(run_child(["--export", name, url, "small", out])["peak_kib"])
        finally:
            server.terminate()
            server.wait(timeout=10)
        size = large.stat().st_size
        checks = check_table(large, small)
    rows = [
        "| contender | MB/s, wall (median, range) | client CPU per MB | peak RSS | over a few-KB export |",
        "|---|---|---|---|---|",
    ]
    for name, label in CONTENDERS.items():
        rates = [size / 1e6 / result["wall"] for result in results[name]]
        peaks = [result["peak_kib"] for result in results[name]]
        over = [peak - base for peak, base in zip(peaks, baselines[name], strict=True)]
        cpu_ms = statistics.median(result["cpu"] for result in results[name]) * 1000 / (size / 1e6)
        rows.append(
            f"| {label} | {statistics.median(rates):.0f} ({min(rates):.0f}-{max(rates):.0f}) | {cpu_ms:.1f} ms | "
            f"{statistics.median(peaks) / 1024:.0f} MiB | {statistics.median(over) / 1024:+.1f} MiB |"
        )
    intro = (
        f"A {size / 1e6:.1f} MB recording (the simulator's crash recording, inflated: {SHAPES[shape]}), {rounds} "
        "rounds, each export "
        "in a fresh process (the connection read before the clock starts), served by a static server in its own "
        "process on 127.0.0.1. Client CPU is the exporting process's CPU time: on a busy shared machine it is the "
        "figure to compare, wall-clock rates mostly measure the other jobs."
    )
    return intro + "\n\n" + "\n".join(rows) + "\n\n" + checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    parser.add_argument("--mb", type=int, default=50, help="recording size in MB (default 50)")
    parser.add_argument("--rounds", type=int, default=3, help="exports per contender (default 3)")
    parser.add_argument("--shape", choices=SHAPES, default="activity", help="how the recording is large")
    parser.add_argument("--serve", nargs=2, metavar=("LARGE", "SMALL"), help=argparse.SUPPRESS)
    parser.add_argument("--check", nargs=2, metavar=("CHECKER", "BODY"), help=argparse.SUPPRESS)
    parser.add_argument("--export", nargs=4, metavar=("CONTENDER", "URL", "RECORDING", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
    elif args.check:
        check(*args.check)
    elif args.export:
        export(*args.export)
    else:
        print(measure(args.mb, args.rounds, args.shape))


if __name__ == "__main__":
    main()
