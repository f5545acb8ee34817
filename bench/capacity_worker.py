"""
One triggerer-capacity measurement: N concurrent waits of one contender in one event loop, in a fresh process.

Run by :mod:`bench.capacity` (``python -m bench.capacity_worker --contender devrev --waits 10000 ...``),
with the Airflow environment of :func:`bench.harness.airflow_environment`. The steps:

1. Warm up: one complete wait on a session that exists already, so imports, the connection lookup's caches
   and the like are paid before the baseline, by every contender alike.
2. Baseline RSS; reset the server's counters.
3. Start the N waits the way Airflow's triggerer starts triggers (:func:`start_waits`). No session exists
   yet, so every wait polls and gets 404s. When the server has been asked for all N sessions, every wait
   is running and has made its first poll: that RSS, minus the baseline, divided by N, is the memory per
   wait.
4. Set the server's epoch: session ``i`` appears at a random moment within ``--window`` seconds after it
   (the same moments for every contender of a run: the seed is the run's). Detection lag = the moment the
   wait's event arrived - the moment its session appeared.
5. When every wait is over (or at the deadline): client CPU time since step 3 / requests the server
   answered = CPU per poll; the server's accepted connections = TCP connections opened. A ticker task
   that sleeps 50 ms records how late the loop woke it up: the worst event-loop stall.

Starting the waits first and letting the sessions appear afterwards measures what a triggerer holding N
waits costs: when sessions could appear while the waits are still starting, a contender that starts
slowly would hold fewer waits at once and look cheaper than it is.

A contender that cannot keep up (its polls need more than the one core an event loop has) cannot even
start all N waits: each start has to queue behind the polls already running. After ``--start-timeout``
seconds the epoch is set anyway; the memory figure is then per wait that did poll, and every wait that
did not end with a correct "found" event by the deadline counts as an error.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.contenders import CONTENDERS, Contender, make_contender
from bench.harness import acommand, write_result
from bench.stats import percentile

TICK = 0.05
RSS_EVERY = 0.25
STATS_EVERY = 0.1


@dataclass
class Waits:
    """What each wait ended with, by index; ``appear_at`` is known once the epoch is set."""

    appear_after: list[float]
    appear_at: list[float] = field(default_factory=list)
    event_at: list[float | None] = field(default_factory=list)
    found: list[bool] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.event_at = [None] * len(self.appear_after)
        self.found = [False] * len(self.appear_after)

    def recorder(self, index: int) -> Any:
        """The ``record`` callback of wait ``index``: the first event counts."""

        def record(found: bool) -> None:
            if self.event_at[index] is None:
                self.event_at[index] = time.time()
                self.found[index] = found

        return record


@dataclass
class LoopHealth:
    """Worst lateness of a 50 ms ticker, RSS samples, and how starting went."""

    max_stall: float = 0.0
    peak_rss: int = 0
    loaded_rss: int = 0
    polled: int = 0
    started_after: float = float("nan")


class Profiling:
    """
    Optional profiles of the measured phase, to find why a target is missed (they distort the figures).

    :param cpu_path: Write a pyinstrument text report of the whole measured phase here.
    :param memory_path: Write the allocations alive once every wait has polled (tracemalloc, by traceback),
        compared with the baseline, here.
    """

    def __init__(self, cpu_path: str | None, memory_path: str | None) -> None:
        self.cpu_path, self.memory_path = cpu_path, memory_path
        self.cpu: Any = None
        self.baseline: Any = None
        if memory_path:
            import tracemalloc

            tracemalloc.start(12)
            self.baseline = tracemalloc.take_snapshot()
        if cpu_path:
            from pyinstrument import Profiler

            # async_mode="disabled": sample whatever the loop's thread runs, not one coroutine.
            self.cpu = Profiler(interval=0.0005, async_mode="disabled")
            self.cpu.start()

    def loaded(self) -> None:
        """Every wait has polled once: write the memory report."""
        if self.memory_path:
            import tracemalloc

            top = tracemalloc.take_snapshot().compare_to(self.baseline, "traceback")[:20]
            lines = [str(stat) + "\n    " + "\n    ".join(stat.traceback.format(limit=10)) for stat in top]
            Path(self.memory_path).write_text("\n\n".join(lines))

    def finish(self) -> None:
        """The measured phase is over: write the CPU report."""
        if self.cpu is not None:
            self.cpu.stop()
            Path(self.cpu_path or "").write_text(self.cpu.output_text(unicode=True, show_all=False))


def rss_bytes() -> int:
    """Resident set size of this process now."""
    import psutil

    return int(psutil.Process().memory_info().rss)


def appear_offsets(count: int, window: float, seed: int) -> list[float]:
    """When each session appears, in seconds after the epoch (whole milliseconds, as the ids carry them)."""
    rng = random.Random(seed)
    return [round(rng.uniform(0, window) * 1000) / 1000 for _ in range(count)]


def session_id(index: int, appear_after: float) -> str:
    """An id the server reads the appear time from (see :mod:`bench.server`)."""
    return f"wait{index}-{round(appear_after * 1000)}"


async def ticker(health: LoopHealth) -> None:
    """Sleep ``TICK`` forever and remember the worst oversleep: how long the loop was blocked."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(TICK)
        health.max_stall = max(health.max_stall, loop.time() - before - TICK)


async def track_rss(health: LoopHealth) -> None:
    """Keep the peak RSS."""
    while True:
        health.peak_rss = max(health.peak_rss, rss_bytes())
        await asyncio.sleep(RSS_EVERY)


async def guarded(contender: Contender, prepared: Any, waits: Waits, index: int) -> None:
    """One wait; an exception out of it is an error of the contender, not of the benchmark."""
    try:
        await contender.wait(prepared, waits.recorder(index))
    except Exception as err:
        waits.errors.append(f"{type(err).__name__}: {err}"[:200])


async def start_waits(contender: Contender, waits: Waits, tasks: list[asyncio.Task[None]]) -> None:
    """
    Start one task per wait, appended to ``tasks``, the way Airflow's triggerer does
    (``TriggerRunner.create_triggers``): it yields to the loop before inflating each trigger and again
    before starting its task, so starting thousands never blocks the loop for longer than one trigger's
    first step.
    """
    for index, after in enumerate(waits.appear_after):
        await asyncio.sleep(0)
        prepared = contender.prepare(session_id(index, after))
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(guarded(contender, prepared, waits, index)))


async def sessions_polled(control_port: int, count: int, timeout: float) -> int:
    """Wait until the server has been asked for ``count`` distinct sessions, or ``timeout``; return how many."""
    deadline = time.monotonic() + timeout
    while True:
        seen = int((await acommand(control_port, "stats"))["sessions_seen"])
        if seen >= count or time.monotonic() >= deadline:
            return seen
        await asyncio.sleep(STATS_EVERY)


async def warm_up(contender: Contender) -> None:
    """One complete wait on a session that exists from the start."""
    probe = Waits(appear_after=[0.0])
    await guarded(contender, contender.prepare("warmup"), probe, 0)
    if probe.errors or not probe.found[0]:
        raise RuntimeError(f"warm-up wait of {contender.name} failed: {probe.errors or 'not found'}")


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Steps 1-5 of the module docstring; returns the raw figures."""
    contender = make_contender(args.contender, poll_interval=args.poll_interval, base_url=args.base_url)
    await contender.start()
    await warm_up(contender)
    gc.collect()
    profiler = Profiling(args.profile_cpu, args.profile_memory)
    health = LoopHealth(peak_rss=rss_bytes())
    baseline = health.peak_rss
    await acommand(args.control_port, "reset")

    started, cpu_started = time.time(), time.process_time()
    background = [asyncio.create_task(ticker(health)), asyncio.create_task(track_rss(health))]
    waits = Waits(appear_after=appear_offsets(args.waits, args.window, args.seed))
    tasks: list[asyncio.Task[None]] = []
    starter = asyncio.create_task(start_waits(contender, waits, tasks))
    health.polled = await sessions_polled(args.control_port, args.waits, timeout=args.start_timeout)
    health.loaded_rss, health.started_after = rss_bytes(), time.time() - started
    profiler.loaded()

    epoch = (await acommand(args.control_port, "epoch"))["epoch"]
    waits.appear_at = [epoch + after for after in waits.appear_after]
    deadline = epoch + args.window + args.poll_interval * 3 + args.grace
    await asyncio.wait([starter], timeout=max(0.0, deadline - time.time()))
    await asyncio.wait([*tasks, starter], timeout=max(0.0, deadline - time.time()))
    cpu, wall = time.process_time() - cpu_started, time.time() - started
    profiler.finish()
    leftovers = [task for task in [starter, *tasks, *background] if not task.done()]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)
    server = await acommand(args.control_port, "stats")
    await contender.stop()
    figures = summarize(args, waits, health, server, baseline=baseline, cpu=cpu, wall=wall)
    figures["unfinished"] = len(leftovers) - len(background)
    return figures


def summarize(
    args: argparse.Namespace,
    waits: Waits,
    health: LoopHealth,
    server: dict[str, Any],
    *,
    baseline: int,
    cpu: float,
    wall: float,
) -> dict[str, Any]:
    """The figures of one run, ready for JSON."""
    lags, correct = [], 0
    for event, appear, found in zip(waits.event_at, waits.appear_at, waits.found, strict=True):
        if event is not None:
            lags.append(event - appear)
            # "Found" before the session existed would be a wrong answer, however fast.
            correct += found and event >= appear
    polls = int(server["requests"])
    return {
        "contender": args.contender,
        "waits": args.waits,
        "seed": args.seed,
        "baseline_rss": baseline,
        "loaded_rss": health.loaded_rss,
        "peak_rss": health.peak_rss,
        "polled_at_sample": health.polled,
        "all_started": health.polled >= args.waits,
        "memory_per_wait": (health.loaded_rss - baseline) / max(1, health.polled),
        "peak_memory_per_wait": (health.peak_rss - baseline) / args.waits,
        "start_seconds": health.started_after,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "polls": polls,
        "cpu_per_poll": cpu / polls if polls else float("nan"),
        "connections_opened": server["accepts"],
        "max_open_connections": server["max_open_connections"],
        "statuses": server["statuses"],
        "lag_p50": percentile(lags, 50),
        "lag_p99": percentile(lags, 99),
        "lag_max": max(lags, default=float("nan")),
        "max_stall": health.max_stall,
        # Every wait that did not end with a correct "found" event: exceptions, wrong or missing events.
        "errors": args.waits - correct,
        "exceptions": len(waits.errors),
        "error_samples": sorted(set(waits.errors))[:5],
    }


def raise_file_limit() -> None:
    """One socket per concurrent poll is how some contenders work: let them have the hard limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str] | None = None) -> None:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description="One triggerer-capacity measurement, in this process.")
    parser.add_argument("--contender", choices=CONTENDERS, required=True)
    parser.add_argument("--waits", type=int, required=True)
    parser.add_argument("--poll-interval", type=float, default=5.0)
    parser.add_argument("--window", type=float, default=20.0, help="sessions appear at random within it (s)")
    parser.add_argument("--grace", type=float, default=20.0, help="extra seconds before unfinished waits count")
    parser.add_argument("--start-timeout", type=float, default=30.0, help="longest wait for all N to have polled")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--profile-cpu", metavar="PATH", help="write a pyinstrument report of the measured phase")
    parser.add_argument("--profile-memory", metavar="PATH", help="write the top allocations (tracemalloc)")
    args = parser.parse_args(argv)
    raise_file_limit()
    # Airflow's import and logging set-up happen here, before the baseline, as in a running triggerer.
    import airflow.triggers.base  # noqa: F401

    write_result(args.out, asyncio.run(measure(args)))


if __name__ == "__main__":
    main()
