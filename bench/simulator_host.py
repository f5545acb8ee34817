"""
The project's simulator (``airflow_provider_devrev.testing.DevRevSimulator``) in a process of its own, seeded
for the export and bulk benchmarks, with a control port.

Why a process of its own: the simulator is a ``ThreadingHTTPServer``. In the measuring process its threads
would take the GIL from the client being measured; here, client and simulator each have an interpreter (and,
on this 2-core machine, a core) as a client and a remote API would.

Seeding: ``--sessions N`` contract-valid ``android`` sessions (``make_session``) under one version key, ids
``bench-000000x``..., created one minute apart from 2026-11-01T00:00Z (10,000 span about seven days), all with
``is_crash=True``: every one matches the export's filter and date range, so both forms list the same N.
``--latency S`` adds the simulator's ``slow`` fault to every ``sessions.get`` (the wait happens outside its lock,
as a remote API's round trip would).

The control port speaks :class:`bench.harness.BenchServer`'s protocol, one line per connection: ``stats``
(requests and statuses since the last reset, peak requests in flight, TCP connections opened so far, and this
process's CPU time) and ``reset`` (empties the request log, restarts the peak count).

Run: ``python -m bench.simulator_host --token TOKEN --sessions 300``; prints ``{"url", "control_port"}`` when
ready, then serves until terminated.
"""

from __future__ import annotations

import argparse
import json
import socketserver
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.harness import PLATFORM, VERSION_KEY

#: Where the seeded sessions start; the export asks for [LIST_AFTER, LIST_BEFORE), which holds them all.
SEED_START = datetime(2026, 11, 1, tzinfo=UTC)
SEED_STEP = timedelta(minutes=1)
LIST_AFTER = "2026-11-01T00:00:00Z"
LIST_BEFORE = "2026-12-01T00:00:00Z"


def session_id(index: int) -> str:
    """The id of seeded session ``index``. Its last ``-`` part is not all digits, so the benchmark server
    (:mod:`bench.server`) has the same ids from the start too."""
    return f"bench-{index:06d}x"


def seeded_created_at(index: int) -> str:
    """The ``created_at`` of seeded session ``index``."""
    return (SEED_START + index * SEED_STEP).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def parse_rate_limit(text: str | None) -> tuple[int, float] | None:
    """``50/1.0`` as ``(50, 1.0)``; ``None`` or empty: no limit."""
    if not text:
        return None
    count, _, per = text.partition("/")
    return int(count), float(per or 1.0)


def build(args: argparse.Namespace) -> Any:
    """The started, seeded simulator."""
    from airflow_provider_devrev.testing import DevRevSimulator

    simulator = DevRevSimulator(
        token=args.token, page_size=args.page_size, seed_data=False, rate_limit=parse_rate_limit(args.rate_limit)
    )
    for index in range(args.sessions):
        created_at = seeded_created_at(index)
        session = simulator.make_session(
            "mobile", platform=PLATFORM, session_id=session_id(index), created_at=created_at, is_crash=True
        )
        simulator.add_session(session, version_key=VERSION_KEY)
    if args.latency:
        simulator.add_fault("slow", times=None, path="/observability.sessions.get", delay=args.latency)
    return simulator.start()


def stats(simulator: Any) -> dict[str, Any]:
    """What the control port's ``stats`` answers."""
    recorded = simulator.requests
    return {
        "requests": len(recorded),
        "statuses": {str(k): v for k, v in Counter(r.status for r in recorded).items()},
        "peak_concurrency": simulator.peak_concurrency,
        "connections": simulator.connections_opened,
        "cpu": time.process_time(),
    }


def control_server(simulator: Any) -> socketserver.TCPServer:
    """The control port (one command line in, one JSON line out, per connection)."""

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            command = self.rfile.readline().decode().strip()
            reply: dict[str, Any]
            if command == "stats":
                reply = stats(simulator)
            elif command == "reset":
                simulator.clear_requests()
                simulator.reset_peak_concurrency()
                reply = {"ok": True}
            else:
                reply = {"error": f"unknown command {command!r}"}
            self.wfile.write(json.dumps(reply).encode() + b"\n")

    return socketserver.TCPServer(("127.0.0.1", 0), Handler)


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--token", required=True)
    parser.add_argument("--sessions", type=int, default=300)
    parser.add_argument("--page-size", type=int, default=100, help="the simulator's default list page size")
    parser.add_argument("--rate-limit", help="REQUESTS/SECONDS, e.g. 50/1.0 (default: none)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every sessions.get")
    args = parser.parse_args(argv)
    simulator = build(args)
    with control_server(simulator) as control:
        print(json.dumps({"url": simulator.url, "control_port": control.server_address[1]}), flush=True)
        try:
            control.serve_forever()
        except KeyboardInterrupt:
            sys.exit(0)
        finally:
            simulator.stop()


if __name__ == "__main__":
    main()
