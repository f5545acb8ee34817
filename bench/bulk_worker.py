"""
``get_sessions`` throughput, measured in a fresh process, at several ``max_concurrency`` against several servers.

Run by :mod:`bench.bulk_fetch`. Each target is a server and the hook's connection to it. In each round, every
(concurrency, contender) pair fetches the same N existing sessions once, in an order rotated from round to round:

- ``get_sessions``: ``DevRevHook.get_sessions(platform, version_key, ids, max_concurrency=C)``: a thread pool
  whose workers share one :class:`AdaptiveLimit` (all pause and the limit halves on a 429).
- ``pool``, for reference: what a user writes with the single-session call, a ``ThreadPoolExecutor(C)`` of
  ``get_session`` on one ``worker_copy()`` of the hook per thread, each call retrying a 429 on its own (after
  ``Retry-After``, with the hook's backoff as its floor). Not at ``max_concurrency=1``, where it is the same
  sequential loop.

The hook is built and its connection read before the clock starts; thread pools, TCP connections and every
request are inside it. Before each fetch from a rate-limited target, the process idles one window so that
every fetch starts with a whole window. Requests, statuses, peak requests in flight and TCP connections are
the server's figures.
"""

from __future__ import annotations

import argparse
import gc
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.harness import PLATFORM, VERSION_KEY, control_client, write_result
from bench.simulator_host import session_id

CONTENDERS = ("get_sessions", "pool")


def fetcher(name: str, conn_id: str) -> tuple[Callable[[list[str], int], list[dict[str, Any]]], Callable[[], None]]:
    """``(fetch, close)`` for contender ``name``; the connection is read here, before the clock starts."""
    from airflow_provider_devrev.hooks.devrev import DevRevHook

    hook = DevRevHook(conn_id)
    hook.settings  # noqa: B018 - the connection lookup is Airflow's, not the fetch's
    if name == "get_sessions":
        return lambda ids, concurrency: hook.get_sessions(PLATFORM, VERSION_KEY, ids, max_concurrency=concurrency), (
            hook.close
        )
    clones: list[DevRevHook] = []

    def pool(ids: list[str], concurrency: int) -> list[dict[str, Any]]:
        local = threading.local()

        def one(sid: str) -> dict[str, Any]:
            clone = getattr(local, "hook", None)
            if clone is None:
                clone = local.hook = hook.worker_copy()
                clones.append(clone)
            return clone.get_session(PLATFORM, sid, VERSION_KEY)

        with ThreadPoolExecutor(max_workers=concurrency) as executor:
            return list(executor.map(one, ids))

    def close() -> None:
        for clone in clones:
            clone.close()

    return pool, close


def measure_one(
    name: str, conn_id: str, control_port: int, pause: float, ids: list[str], concurrency: int
) -> dict[str, Any]:
    """One fetch of ``ids``: wall time, client CPU, and what the server saw."""
    server = control_client(control_port)
    fetch, close = fetcher(name, conn_id)
    server.reset()
    before = server.stats()
    gc.collect()
    time.sleep(pause)
    error = None
    cpu_started, started = time.process_time(), time.perf_counter()
    try:
        sessions = fetch(ids, concurrency)
    except Exception as err:  # a fetch that gives up is a figure too
        sessions, error = [], f"{type(err).__name__}: {err}"
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    after = server.stats()
    close()
    if error is None and [s.get("session_id") for s in sessions] != ids:
        error = f"got {len(sessions)} sessions, not the {len(ids)} asked for in order"
    statuses = after["statuses"]
    return {
        "contender": name,
        "concurrency": concurrency,
        "sessions": len(ids),
        "wall": wall,
        "cpu": cpu,
        "requests": after["requests"],
        "rate_limited": statuses.get("429", 0),
        "statuses": statuses,
        # The simulator counts requests in flight; the benchmark server answers each as soon as it is read.
        "peak_concurrency": after.get("peak_concurrency"),
        "connections": after["accepts"] if "accepts" in after else after["connections"] - before["connections"],
        "error": error,
    }


def measure(
    targets: dict[str, tuple[str, int, float]], ids: list[str], concurrencies: list[int], names: list[str], rounds: int
) -> list[dict[str, list[dict[str, Any]]]]:
    """``rounds`` rounds of every (concurrency, contender) pair on every target, the order rotated per round."""
    for conn_id, control_port, pause in targets.values():  # warm-up: imports, first connections
        for name in names:
            measure_one(name, conn_id, control_port, pause, ids[:16], 2)
    # The reference pool with one worker is the same sequential loop as get_sessions with one: not measured.
    pairs = [(c, name) for c in concurrencies for name in names if name == "get_sessions" or c > 1]
    results = []
    for index in range(rounds):
        shift = index % len(pairs)
        order = pairs[shift:] + pairs[:shift]
        results.append(
            {
                target: [
                    measure_one(name, conn_id, control_port, pause, ids, concurrency) for concurrency, name in order
                ]
                for target, (conn_id, control_port, pause) in targets.items()
            }
        )
        print(f"round {index + 1}/{rounds} done", flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description="get_sessions throughput, measured in this process.")
    parser.add_argument("--sessions", type=int, default=300)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument(
        "--target",
        action="append",
        required=True,
        help="NAME=CONN_ID,CONTROL_PORT,PAUSE (repeatable); PAUSE: seconds to idle before each fetch",
    )
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    import airflow.sdk  # noqa: F401  (Airflow's set-up is not part of any fetch)

    targets: dict[str, tuple[str, int, float]] = {}
    for spec in args.target:
        name, _, rest = spec.partition("=")
        conn_id, control_port, pause = rest.split(",")
        targets[name] = (conn_id, int(control_port), float(pause))
    ids = [session_id(index) for index in range(args.sessions)]
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    rounds = measure(targets, ids, concurrencies, args.contenders.split(","), args.rounds)
    write_result(args.out, {"rounds": rounds})


if __name__ == "__main__":
    main()
