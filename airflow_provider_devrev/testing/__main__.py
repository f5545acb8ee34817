"""``python -m airflow_provider_devrev.testing`` / ``devrev-simulator``: run the simulator in the foreground.

Prints the URL (with ``--tls``, also the throw-away CA's file), an ``export AIRFLOW_CONN_DEVREV_DEFAULT=...``
line (which includes the simulator's token: it is a test token the simulator was told to accept, not a DevRev
credential) and how many sessions it serves, then serves until SIGINT or SIGTERM and exits 0.

``--sessions FILE`` adds the sessions of a JSON Lines file (see
:mod:`airflow_provider_devrev.testing.sessions_file`); a bad line stops it before it listens, exit status 2.
``--list`` prints the sessions it would serve (seeded and from the file) as a table and exits 0 without
listening. ``--rate-limit REQUESTS/SECONDS`` throttles each token to that many requests per fixed window.

``--fault KIND[:KEY=VALUE,...][@ENDPOINT][*TIMES]`` (repeatable) scripts a fault of
:mod:`airflow_provider_devrev.testing.faults` as ``DevRevSimulator.add_fault`` does (syntax:
:mod:`airflow_provider_devrev.testing.fault_spec`); a bad one is refused by argparse, exit status 2.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType

    from airflow_provider_devrev.testing.fault_spec import FaultSpec
    from airflow_provider_devrev.testing.sessions_file import SessionLine
    from airflow_provider_devrev.testing.simulator import DevRevSimulator


def _parser() -> argparse.ArgumentParser:
    from airflow_provider_devrev.testing.data import DEFAULT_TOKEN
    from airflow_provider_devrev.testing.fault_spec import help_text

    parser = argparse.ArgumentParser(
        prog="devrev-simulator",
        description="Serve a local DevRev observability API simulator (loopback only).",
        epilog=help_text(),
        # The epilog lists the fault kinds one per line: argparse would otherwise run them together.
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default 0)")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="bearer token to accept (default: a fake token)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated data set (default 0)")
    parser.add_argument("--page-size", type=int, default=50, help="default list page size (default 50)")
    parser.add_argument("--empty", action="store_true", help="start without the seeded data set")
    parser.add_argument(
        "--cursor",
        choices=("keyset", "keyset_no_tiebreak", "offset"),
        default="keyset",
        help="how list cursors remember a position (default keyset: stable; the others are unkind on purpose)",
    )
    parser.add_argument(
        "--order", choices=("asc", "desc"), default="asc", help="created_at order of a list without sort_by"
    )
    parser.add_argument("--ignore-sort-by", action="store_true", help="disregard the sort_by of list requests")
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS with a throw-away CA (needs trustme); the connection's ca_bundle names its file",
    )
    parser.add_argument(
        "--sessions",
        type=Path,
        metavar="FILE",
        help='JSON Lines of sessions to serve too, one {"version_key": ..., "session": {...}} per line, '
        'optionally with "visible_after_requests": N or "visible_at": "<ISO time>"',
    )
    parser.add_argument(
        "--rate-limit",
        type=_rate_limit,
        metavar="REQUESTS/SECONDS",
        help="throttle each token to REQUESTS per fixed window of SECONDS, e.g. 100/300 (DevRev's own is per "
        "user, in five-minute windows): over it, 429 with Retry-After; every answer carries X-Ratelimit-*",
    )
    parser.add_argument(
        "--list",
        action="store_true",
        help="print the sessions it would serve (seeded and from --sessions) as a table, and exit",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        type=_fault,
        metavar="KIND[:KEY=VALUE,...][@ENDPOINT][*TIMES]",
        help="script a fault (repeatable, met in the order given); kinds, parameters and examples below",
    )
    return parser


def _fault(text: str) -> FaultSpec:
    from airflow_provider_devrev.testing.fault_spec import FaultSpecError, parse_fault_spec

    try:
        return parse_fault_spec(text)
    except FaultSpecError as exc:
        # argparse prints this message as it is, after "argument --fault:", and exits 2.
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator until SIGINT/SIGTERM.

    :param argv: command-line arguments (default ``sys.argv[1:]``).
    :returns: the exit status: 0 after a signal, 2 for bad arguments (including a non-loopback host).
    """
    from airflow_provider_devrev.testing.simulator import DevRevSimulator, is_loopback

    parser = _parser()
    args = parser.parse_args(argv)
    if not is_loopback(args.host):
        parser.error(f"refusing --host {args.host!r}: the simulator listens on loopback addresses only")
    try:
        from_file = _sessions(args.sessions)
        if args.list:
            return _list(args.seed, seeded=not args.empty, from_file=from_file)
        simulator = DevRevSimulator(
            token=args.token,
            host=args.host,
            port=args.port,
            seed=args.seed,
            # Wall-clock time, so a line's visible_at (a date) is a point on the simulator's clock.
            clock=time.time,
            page_size=args.page_size,
            seed_data=not args.empty,
            tls=args.tls,
            cursor_mode=args.cursor,
            order=args.order,
            ignore_sort_by=args.ignore_sort_by,
            rate_limit=args.rate_limit,
        )
        _add(simulator, from_file)
        for fault in args.fault:
            simulator.add_fault(fault.kind, times=fault.times, path=fault.path, **fault.params)
        simulator.start()
    except (ValueError, OSError, ImportError) as exc:
        print(f"devrev-simulator: error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        print(f"DevRev simulator listening on {simulator.url}")
        if simulator.ca_file:
            print(f"CA certificate (trust it as the connection's ca_bundle): {simulator.ca_file}")
        print(f"export AIRFLOW_CONN_DEVREV_DEFAULT={shlex.quote(simulator.connection_json())}")
        now = time.time()
        later = sum(
            1 for e in from_file if e.visible_after_requests or (e.visible_at and e.visible_at.timestamp() > now)
        )
        print(
            f"serving {len(simulator.sessions)} sessions now; {len(from_file)} came from --sessions, {later} of "
            "them appearing later (--list shows them all)",
            flush=True,
        )
        for fault in args.fault:
            print(fault.describe(), flush=True)
        # A timed wait keeps the main thread responsive to signals on every platform.
        while not stop.wait(0.5):
            pass
    finally:
        simulator.stop()
    return 0


def _rate_limit(text: str) -> tuple[int, float]:
    """``--rate-limit``'s ``REQUESTS/SECONDS``, e.g. ``100/300``, as the simulator's ``rate_limit``."""
    count, slash, seconds = text.partition("/")
    try:
        limit, per = int(count), float(seconds)
    except ValueError:
        limit, per = 0, 0.0
    if not slash or limit < 1 or not 0 < per < float("inf"):
        raise argparse.ArgumentTypeError(f"expected REQUESTS/SECONDS with REQUESTS >= 1 and SECONDS > 0, not {text!r}")
    return limit, per


def _sessions(path: Path | None) -> list[SessionLine]:
    if path is None:
        return []
    from airflow_provider_devrev.testing.sessions_file import read_sessions_file

    return read_sessions_file(path)


def _seeded(seed: int) -> list[tuple[str, dict[str, Any]]]:
    from airflow_provider_devrev.testing.data import seed_sessions

    return seed_sessions(seed)


def _add(simulator: DevRevSimulator, from_file: Sequence[SessionLine]) -> None:
    for entry in from_file:
        simulator.add_session(
            entry.session,
            version_key=entry.version_key,
            appear_after_requests=entry.visible_after_requests,
            appear_at=entry.visible_at.timestamp() if entry.visible_at else None,
        )


def _list(seed: int, *, seeded: bool, from_file: Sequence[SessionLine]) -> int:
    from airflow_provider_devrev.testing.session_table import listed_sessions, render_table

    rows = listed_sessions(_seeded(seed) if seeded else [], from_file)
    print(render_table(rows))
    print(f"{len(rows)} sessions ({sum(row.source == 'seed' for row in rows)} seeded, the rest from --sessions)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
