"""``python -m airflow_provider_devrev.testing`` / ``devrev-simulator``: run the simulator in the foreground.

Prints the URL (with ``--tls``, also the throw-away CA's file) and an ``export AIRFLOW_CONN_DEVREV_DEFAULT=...``
line (which includes the simulator's token: it is a test token the simulator was told to accept, not a DevRev
credential), then serves until SIGINT or SIGTERM and exits 0.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType


def _parser() -> argparse.ArgumentParser:
    from airflow_provider_devrev.testing.data import DEFAULT_TOKEN

    parser = argparse.ArgumentParser(
        prog="devrev-simulator",
        description="Serve a local DevRev observability API simulator (loopback only).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default 0)")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="bearer token to accept (default: a fake token)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated data set (default 0)")
    parser.add_argument("--page-size", type=int, default=50, help="default list page size (default 50)")
    parser.add_argument("--empty", action="store_true", help="start without the seeded data set")
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS with a throw-away CA (needs trustme); the connection's ca_bundle names its file",
    )
    return parser


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
        simulator = DevRevSimulator(
            token=args.token,
            host=args.host,
            port=args.port,
            seed=args.seed,
            page_size=args.page_size,
            seed_data=not args.empty,
            tls=args.tls,
        )
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
        print(f"export AIRFLOW_CONN_DEVREV_DEFAULT={shlex.quote(simulator.connection_json())}", flush=True)
        # A timed wait keeps the main thread responsive to signals on every platform.
        while not stop.wait(0.5):
            pass
    finally:
        simulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
