"""
Benchmark 7, ``get_sessions`` throughput: runs :mod:`bench.bulk_worker` in a fresh process against the project's
simulator (three processes of :mod:`bench.simulator_host`: plain, rate-limited, with latency) and the benchmark
server, and builds the section.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import BenchServer, SimulatorHost, run_child, simulator_host
from bench.report import Section
from bench.simulator_host import parse_rate_limit
from bench.stats import fmt, markdown_table, median, spread

Rounds = list[dict[str, list[dict[str, Any]]]]


@dataclass
class BulkSettings:
    """How much to measure."""

    sessions: int = 300
    concurrency: tuple[int, ...] = (1, 8, 32)
    rate_limit: str = "50/1.0"
    latency: float = 0.01
    rounds: int = 3
    #: Off unless > 0: a fifth server, the rate limit and this latency together (use with max_concurrency >= 8:
    #: at 1, a 0.25 s latency makes a fetch of 300 last 75 s).
    limited_latency: float = 0.0

    @property
    def limit(self) -> tuple[int, float]:
        """The rate limit as ``(requests, per_seconds)``."""
        parsed = parse_rate_limit(self.rate_limit)
        assert parsed is not None
        return parsed


def run(server: BenchServer, env: Mapping[str, str], log_dir: Path, settings: BulkSettings) -> Section:
    """Measure and describe."""
    child_env = dict(env)
    args = ["--sessions", str(settings.sessions), "--rounds", str(settings.rounds)]
    args += ["--concurrency", ",".join(map(str, settings.concurrency))]
    with simulators(env, settings) as hosts:
        for target, (host, pause) in hosts.items():
            conn_id = f"devrev_{target}"
            child_env[f"AIRFLOW_CONN_{conn_id.upper()}"] = host.connection()
            args += ["--target", f"{target}={conn_id},{host.control_port},{pause}"]
        args += ["--target", f"bench=devrev_default,{server.control_port},0"]
        rounds: Rounds = run_child("bulk_worker", args, child_env, log_dir)["rounds"]
    return section(rounds, settings)


@contextmanager
def simulators(env: Mapping[str, str], settings: BulkSettings) -> Iterator[dict[str, tuple[SimulatorHost, float]]]:
    """One simulator process per configuration, with the seconds to idle before each fetch from it."""
    n, window = settings.sessions, settings.limit[1] + 0.05
    configurations: dict[str, tuple[dict[str, Any], float]] = {
        "simulator": ({}, 0.0),
        "limited": ({"rate_limit": settings.rate_limit}, window),
        "slow": ({"latency": settings.latency}, 0.0),
    }
    if settings.limited_latency > 0:
        configurations["limited_slow"] = (
            {"rate_limit": settings.rate_limit, "latency": settings.limited_latency},
            window,
        )
    with ExitStack() as stack:
        yield {
            name: (stack.enter_context(simulator_host(env, sessions=n, **options)), pause)
            for name, (options, pause) in configurations.items()
        }


def runs_of(rounds: Rounds, target: str, contender: str, concurrency: int) -> list[dict[str, Any]]:
    """One (contender, concurrency)'s fetches from one target, in round order."""
    return [
        next(r for r in results[target] if r["contender"] == contender and r["concurrency"] == concurrency)
        for results in rounds
    ]


def rates(runs: list[dict[str, Any]]) -> list[float]:
    """Sessions per second of each fetch that succeeded."""
    return [r["sessions"] / r["wall"] for r in runs if r["error"] is None]


def targets(settings: BulkSettings) -> dict[str, str]:
    """Each target's label."""
    count, per = settings.limit
    labels = {
        "simulator": "simulator, no rate limit",
        "limited": f"simulator, rate limit {count} per {per:g} s",
        "slow": f"simulator, +{settings.latency * 1000:g} ms per request",
    }
    if settings.limited_latency > 0:
        labels["limited_slow"] = f"simulator, rate limit {count} per {per:g} s, +{settings.limited_latency * 1000:g} ms"
    labels["bench"] = "benchmark server (client-bound)"
    return labels


def ceiling(target: str, concurrency: int, settings: BulkSettings) -> str:
    """The physical limit of ``target`` at ``concurrency``, where there is one to state."""
    count, per = settings.limit
    best = settings.sessions / ((math.ceil(settings.sessions / count) - 1) * per)
    if target == "limited":
        return f"{count / per:g}/s ({best:g}/s for {settings.sessions} from a fresh window)"
    if target == "slow":
        return f"{concurrency / settings.latency:,.0f}/s (C / latency)"
    if target == "limited_slow":
        bound = concurrency / settings.limited_latency
        return f"{min(bound, count / per):,.0f}/s (the lower of {count / per:g}/s and C / latency = {bound:,.0f}/s)"
    return ""


def cell(values: list[float], digits: int = 0) -> str:
    """``median (min-max)``, or the value alone when all are equal."""
    if not values:
        return "n/a"
    if min(values) == max(values):
        return fmt(values[0], digits)
    return f"{fmt(median(values), digits)} ({spread(values, digits)})"


def main_table(rounds: Rounds, settings: BulkSettings) -> str:
    """``get_sessions`` at every concurrency on every target."""
    rows = []
    for target, label in targets(settings).items():
        base = rates(runs_of(rounds, target, "get_sessions", settings.concurrency[0]))
        for concurrency in settings.concurrency:
            runs = runs_of(rounds, target, "get_sessions", concurrency)
            ok = [r for r in runs if r["error"] is None]
            speed = rates(runs)
            peaks = [float(r["peak_concurrency"]) for r in ok if r["peak_concurrency"] is not None]
            failed = f" ({len(runs) - len(ok)} of {len(runs)} failed)" if len(ok) < len(runs) else ""
            rows.append(
                [
                    label,
                    str(concurrency),
                    fmt(median(speed), 0) + failed,
                    spread(speed),
                    f"{median(speed) / median(base):.2f}x" if base else "n/a",
                    cell([float(r["rate_limited"]) for r in ok]),
                    cell([float(r["requests"]) for r in ok]),
                    cell(peaks) if peaks else "-",
                    cell([float(r["connections"]) for r in ok]),
                    fmt(median(r["cpu"] / r["sessions"] * 1e6 for r in ok), 0, " µs"),
                    ceiling(target, concurrency, settings),
                ]
            )
    header = [
        "server",
        "max_concurrency",
        "sessions/s",
        "range over rounds",
        f"vs max_concurrency={settings.concurrency[0]}",
        "429s",
        "requests",
        "peak in flight (server)",
        "TCP connections",
        "client CPU per session",
        "ceiling",
    ]
    return markdown_table(header, rows)


def reference_table(rounds: Rounds, settings: BulkSettings) -> str:
    """The reference pool of ``get_session`` calls next to ``get_sessions``, where it differs."""
    rows = []
    for target, label in targets(settings).items():
        for concurrency in [c for c in settings.concurrency if c > 1]:
            ours = runs_of(rounds, target, "get_sessions", concurrency)
            pool = runs_of(rounds, target, "pool", concurrency)
            ok = [r for r in pool if r["error"] is None]
            ratios = [
                b["wall"] / a["wall"]
                for a, b in zip(ours, pool, strict=True)
                if a["error"] is None and b["error"] is None
            ]
            peaks = [float(r["peak_concurrency"]) for r in ok if r["peak_concurrency"] is not None]
            failed = f" ({len(pool) - len(ok)} of {len(pool)} failed)" if len(ok) < len(pool) else ""
            rows.append(
                [
                    label,
                    str(concurrency),
                    fmt(median(rates(pool)), 0) + failed,
                    cell([float(r["rate_limited"]) for r in ok]),
                    cell(peaks) if peaks else "-",
                    fmt(median(r["cpu"] / r["sessions"] * 1e6 for r in ok), 0, " µs"),
                    f"{median(ratios):.2f}x ({spread(ratios, 2)})" if ratios else "n/a",
                ]
            )
    header = [
        "server",
        "max_workers",
        "pool sessions/s",
        "pool 429s",
        "pool peak in flight",
        "pool client CPU per session",
        "get_sessions / pool (rate)",
    ]
    title = (
        "**For reference: a `ThreadPoolExecutor` of `get_session` calls, each retrying a 429 alone** (not at "
        "`max_workers=1`: the same sequential loop)"
    )
    return f"{title}\n\n" + markdown_table(header, rows)


def notes(rounds: Rounds, settings: BulkSettings) -> str:
    """The headline figures, computed."""
    count, per = settings.limit
    best = settings.sessions / ((math.ceil(settings.sessions / count) - 1) * per)
    top = settings.concurrency[-1]
    lines = []
    for concurrency in settings.concurrency:
        runs = runs_of(rounds, "limited", "get_sessions", concurrency)
        limited = median(float(r["rate_limited"]) for r in runs)
        lines.append(f"{median(rates(runs)):.1f}/s at {concurrency} ({limited:.0f} 429s)")
    pool = runs_of(rounds, "limited", "pool", top) if top > 1 else []
    pool_text = ""
    if pool:
        pool_429 = median(float(r["rate_limited"]) for r in pool)
        pool_text = f"; the reference pool of {top} workers: {median(rates(pool)):.1f}/s ({pool_429:.0f} 429s)"
    slow = [median(rates(runs_of(rounds, "slow", "get_sessions", c))) for c in settings.concurrency]
    bench_top = median(rates(runs_of(rounds, "bench", "get_sessions", top)))
    return (
        f"With the rate limit ({count} per {per:g} s), `get_sessions` fetched {', '.join(lines)}, against a best "
        f"possible of {best:g}/s for {settings.sessions} sessions from a fresh window ({count / per:g}/s in steady "
        f"state){pool_text}. With {settings.latency * 1000:g} ms per request, concurrency pays: "
        f"{slow[0]:,.0f}/s at {settings.concurrency[0]}, {slow[-1]:,.0f}/s at {top}. Against the benchmark server "
        f"the client alone tops out at {bench_top:,.0f}/s at {top} (every worker thread shares one GIL)."
    )


def section(rounds: Rounds, settings: BulkSettings) -> Section:
    """The tables of this benchmark."""
    count, per = settings.limit
    windows = math.ceil(settings.sessions / count)
    best = settings.sessions / ((windows - 1) * per)
    concurrencies = ", ".join(map(str, settings.concurrency))
    extra = ""
    if settings.limited_latency > 0:
        extra = (
            f"- (e) the simulator with both the rate limit and {settings.limited_latency * 1000:g} ms per request, "
            "the case of a remote API that limits: whether the concurrency held after 429s still fills the window;\n"
        )
    return Section(
        title="Bulk fetch throughput (`get_sessions`)",
        method=f"""`DevRevHook.get_sessions` fetching the same {settings.sessions} existing sessions at
`max_concurrency` {concurrencies}, in one fresh process (`bench/bulk_worker.py`), {settings.rounds} rounds; in each,
every (concurrency, contender) pair fetches once from each server, in an order rotated from round to round. The
hook is built and its connection read before the clock starts; the thread pool, the TCP connections and every
request (429s and their waits included) are inside it. Servers:

- the project's simulator (`DevRevSimulator(seed_data=False)`, {settings.sessions} sessions added with
  `add_session`), each configuration in a process of its own (`bench/simulator_host.py`) so that its threads
  do not compete with the client's for one GIL: (a) without a rate limit; (b) with `rate_limit=({count}, {per:g})`,
  fixed windows answering 429 with the seconds left in the window as `Retry-After` (before each fetch the
  worker idles one window, so every fetch starts with a whole one); (c) with {settings.latency * 1000:g} ms added
  to every request (its `slow` fault, which waits outside the simulator's lock, as a remote API's round trip
  would);
{extra}- (d) the benchmark server (`bench/server.py`, uvloop), which answers at once: what the client alone can do.

What is fair to read from each. The simulator handles requests one at a time (under one lock, in one
interpreter), so in (a) more concurrency cannot go faster: (a) measures the simulator and shows what the
concurrency costs, not what it buys. (b) is bounded by the rate limit: {count / per:g} sessions/s in steady
state; {settings.sessions} sessions from a fresh window need {windows} windows, the last opening
{(windows - 1) * per:g} s after the first, so the best possible is {best:g}/s. There the figures to read are the
429s and how close to the ceiling it stays. (c) shows what concurrency buys when each request waits on the
network, as against DevRev (whose round trips are longer than {settings.latency * 1000:g} ms). Peak in flight is
the simulator's count of requests received and not yet answered (`peak_concurrency`); 429s and requests are its
request log. Without latency, (a) and (b), the simulator mostly answers a request within one slice of its
GIL, so its peak stays low whatever the client sends: the TCP connections show how many workers the client
ran. Sessions/s: median over the rounds (and the range); the other columns: median (and range).
The machine is shared (2 cores, other jobs running).""",
        tables=[main_table(rounds, settings), reference_table(rounds, settings)],
        notes=notes(rounds, settings),
    )
