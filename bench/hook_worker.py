"""
Hook overhead, measured in a fresh process: sequential calls of ``DevRevHook.get_session`` against a raw
keep-alive ``requests.Session().get`` of the same URL (and, for reference, ``HttpHook.run``), side by side.

Run by :mod:`bench.hook_overhead`. Each run builds every contender anew (so its first TCP connection is
counted), warms it up, then times ``--calls`` calls one after the other; the order of the contenders
rotates from run to run so that neither always runs first on a warming machine.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from bench.harness import PLATFORM, TOKEN, VERSION_KEY, control_client, write_result
from bench.stats import percentile

#: No numeric suffix: the server has this session from the start, so every call gets a 200 and a body.
SESSION_ID = "hook-overhead"
WARM_UP_CALLS = 50
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json", "X-Devrev-Scope": "beta"}


def raw_requests(base_url: str) -> Callable[[], Any]:
    """A keep-alive ``requests.Session`` with the hook's headers, GETting the exact URL the hook sends."""
    import requests

    from airflow_provider_devrev.contract import get_session_request

    session = requests.Session()
    session.headers.update(HEADERS)
    url = get_session_request(PLATFORM, SESSION_ID, VERSION_KEY).url(base_url)
    return lambda: session.get(url)


def devrev_hook(base_url: str) -> Callable[[], Any]:
    """``DevRevHook.get_session``: validation, the retry policy, parsing into a dict."""
    from airflow_provider_devrev.hooks.devrev import DevRevHook

    hook = DevRevHook("devrev_default")
    return lambda: hook.get_session(PLATFORM, SESSION_ID, VERSION_KEY)


def http_hook(base_url: str) -> Callable[[], Any]:
    """``HttpHook.run`` of apache-airflow-providers-http, the same request (headers from its connection)."""
    from airflow.providers.http.hooks.http import HttpHook

    hook = HttpHook(method="GET", http_conn_id="http_default")
    params = {"platform": PLATFORM, "session_id": SESSION_ID, "version_key": VERSION_KEY}
    return lambda: hook.run("/observability.sessions.get", data=params)


CONTENDERS: dict[str, Callable[[str], Callable[[], Any]]] = {
    "requests": raw_requests,
    "devrev": devrev_hook,
    "http": http_hook,
}


def timed(call: Callable[[], Any], count: int) -> tuple[list[float], float]:
    """Wall time of each of ``count`` calls, and the CPU time of them all."""
    durations = []
    cpu_started = time.process_time()
    for _ in range(count):
        started = time.perf_counter()
        call()
        durations.append(time.perf_counter() - started)
    return durations, time.process_time() - cpu_started


def measure_one(name: str, base_url: str, control_port: int, calls: int) -> dict[str, Any]:
    """One contender, built fresh: warm-up, then ``calls`` timed calls; connections counted from its first."""
    server = control_client(control_port)
    server.reset()
    call = CONTENDERS[name](base_url)
    timed(call, WARM_UP_CALLS)
    durations, cpu = timed(call, calls)
    stats = server.stats()
    return {
        "contender": name,
        "calls": calls,
        "p50": percentile(durations, 50),
        "p99": percentile(durations, 99),
        "mean": sum(durations) / calls,
        "cpu_per_call": cpu / calls,
        "connections": stats["accepts"],
        "requests": stats["requests"],
        "connections_per_call": stats["accepts"] / stats["requests"],
    }


def measure(base_url: str, control_port: int, calls: int, runs: int, names: list[str]) -> list[list[dict[str, Any]]]:
    """``runs`` rounds of every contender, the order rotated each round."""
    rounds = []
    for run in range(runs):
        order = names[run % len(names) :] + names[: run % len(names)]
        results = {name: measure_one(name, base_url, control_port, calls) for name in order}
        rounds.append([results[name] for name in names])
    return rounds


def main(argv: list[str] | None = None) -> None:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description="Hook overhead, measured in this process.")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    import airflow.sdk  # noqa: F401  (Airflow's set-up is not part of any call)

    rounds = measure(args.base_url, args.control_port, args.calls, args.runs, args.contenders.split(","))
    write_result(args.out, {"rounds": rounds})


if __name__ == "__main__":
    main()
