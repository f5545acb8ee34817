"""
Benchmark 3, triggerer capacity: every contender at every size, each in a fresh process
(:mod:`bench.capacity_worker`), side by side run after run; then the section with medians and ratios.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.contenders import CONTENDERS
from bench.harness import BenchServer, run_child
from bench.profiling import Profile, profile_capacity
from bench.report import Section, Target
from bench.stats import fmt, markdown_table, median

#: The provider's connections per event loop (``hooks/_async_transport.py``), and the minimal loop's.
POOL_SIZE = 100
TARGET_RATIO = 1.5
TARGET_LAG_SLACK = 1.5
TARGET_STALL = 1.0
LABELS = {"devrev": "DevRevSessionTrigger", "http": "HttpSensorTrigger", "minimal": "minimal shared-session loop"}


@dataclass
class CapacitySettings:
    """How much to measure."""

    sizes: tuple[int, ...] = (1000, 5000, 10000)
    runs: int = 3
    poll_interval: float = 5.0
    window: float = 20.0
    contenders: tuple[str, ...] = CONTENDERS
    profile: bool = False


Results = dict[tuple[int, str], list[dict[str, Any]]]


def run(
    server: BenchServer,
    env: Mapping[str, str],
    log_dir: Path,
    settings: CapacitySettings,
    progress: Callable[[str], None] = print,
) -> Section:
    """Measure every (size, contender) ``settings.runs`` times, interleaved, and describe."""
    results: Results = {}
    for run_index in range(settings.runs):
        for waits in settings.sizes:
            shift = run_index % len(settings.contenders)
            for contender in settings.contenders[shift:] + settings.contenders[:shift]:
                figures = measure_one(server, env, log_dir, settings, contender, waits, seed=run_index)
                results.setdefault((waits, contender), []).append(figures)
                progress(progress_line(run_index, settings.runs, figures))
    profile = None
    if settings.profile:
        progress("profiling DevRevSessionTrigger with py-spy ...")
        profile = profile_capacity(server, env, log_dir, max(settings.sizes), settings.poll_interval)
    return section(results, settings, profile)


def measure_one(
    server: BenchServer,
    env: Mapping[str, str],
    log_dir: Path,
    settings: CapacitySettings,
    contender: str,
    waits: int,
    *,
    seed: int,
) -> dict[str, Any]:
    """One contender at one size, in a fresh process."""
    args = ["--contender", contender, "--waits", str(waits), "--seed", str(seed)]
    args += ["--poll-interval", str(settings.poll_interval), "--window", str(settings.window)]
    args += ["--base-url", server.url, "--control-port", str(server.control_port)]
    return run_child("capacity_worker", args, env, log_dir)


def progress_line(run_index: int, runs: int, figures: dict[str, Any]) -> str:
    """One line per measurement, so a long run shows it is alive."""
    return (
        f"  capacity run {run_index + 1}/{runs}: {figures['waits']:>6,} x {figures['contender']:<8} "
        f"{figures['memory_per_wait'] / 1024:6.1f} KB/wait {figures['cpu_per_poll'] * 1e6:7.0f} µs/poll "
        f"p99 lag {figures['lag_p99']:5.1f} s  stall {figures['max_stall']:5.2f} s  errors {figures['errors']}"
    )


def ratios(results: Results, waits: int, contender: str, key: str) -> list[float]:
    """``contender``'s figure over the minimal loop's, run by run (same run, same seed)."""
    mine, reference = results[(waits, contender)], results.get((waits, "minimal"), [])
    return [a[key] / b[key] for a, b in zip(mine, reference, strict=False) if b[key]]


def row(results: Results, waits: int, contender: str) -> list[str]:
    """One table row: medians over the runs (errors: the sum)."""
    runs = results[(waits, contender)]
    started = all(r["all_started"] for r in runs)
    memory = fmt(median(r["memory_per_wait"] / 1024 for r in runs), 1, " KB") + ("" if started else " *")
    has_reference = (waits, "minimal") in results and contender != "minimal"
    memory_ratio = f"{median(ratios(results, waits, contender, 'memory_per_wait')):.2f}x" if has_reference else ""
    cpu_ratio = f"{median(ratios(results, waits, contender, 'cpu_per_poll')):.2f}x" if has_reference else ""
    return [
        f"{waits:,}",
        LABELS.get(contender, contender),
        memory,
        memory_ratio,
        fmt(median(r["cpu_per_poll"] * 1e6 for r in runs), 0, " µs"),
        cpu_ratio,
        fmt(median(r["polls"] for r in runs)),
        fmt(median(r["connections_opened"] for r in runs)),
        fmt(median(r["lag_p50"] for r in runs), 2, " s"),
        fmt(median(r["lag_p99"] for r in runs), 2, " s"),
        fmt(median(r["lag_max"] for r in runs), 2, " s"),
        fmt(median(r["max_stall"] for r in runs), 2, " s"),
        str(sum(r["errors"] for r in runs)),
        fmt(median(r["start_seconds"] for r in runs), 1, " s"),
    ]


HEADER = [
    "waits",
    "contender",
    "memory per wait",
    "vs minimal",
    "client CPU per poll",
    "vs minimal",
    "polls",
    "TCP connections opened",
    "lag p50",
    "lag p99",
    "lag max",
    "worst stall",
    "errors",
    "time to start all",
]


def targets(results: Results, settings: CapacitySettings) -> list[Target]:
    """The issue's targets, at the largest size measured."""
    waits = max(settings.sizes)
    runs = results.get((waits, "devrev"), [])
    if not runs or (waits, "minimal") not in results:
        return []
    memory = median(ratios(results, waits, "devrev", "memory_per_wait"))
    cpu = median(ratios(results, waits, "devrev", "cpu_per_poll"))
    connections = max(r["connections_opened"] for r in runs)
    lag = median(r["lag_p99"] for r in runs)
    lag_goal = settings.poll_interval + TARGET_LAG_SLACK
    stall = median(r["max_stall"] for r in runs)
    errors = sum(r["errors"] for r in runs)
    at = f"at {waits:,} waits"
    return [
        Target(
            f"memory per wait vs minimal loop, {at}", f"≤ {TARGET_RATIO}x", f"{memory:.2f}x", memory <= TARGET_RATIO
        ),
        Target(f"CPU per poll vs minimal loop, {at}", f"≤ {TARGET_RATIO}x", f"{cpu:.2f}x", cpu <= TARGET_RATIO),
        Target(f"TCP connections opened, {at}", f"≤ {POOL_SIZE} (pool)", str(connections), connections <= POOL_SIZE),
        Target(f"p99 detection lag, {at}", f"≤ {lag_goal:g} s", f"{lag:.2f} s", lag <= lag_goal),
        Target(f"worst event-loop stall, {at}", f"≤ {TARGET_STALL:g} s", f"{stall:.2f} s", stall <= TARGET_STALL),
        Target(f"errors, {at} (all runs)", "0", str(errors), errors == 0),
    ]


def headroom(results: Results, settings: CapacitySettings) -> str:
    """What limits a contender: how many waits one event loop's core can poll at this interval."""
    waits = max(settings.sizes)
    lines = []
    for contender in settings.contenders:
        runs = results.get((waits, contender))
        if runs:
            cpu = median(r["cpu_per_poll"] for r in runs)
            lines.append(
                f"- {LABELS.get(contender, contender)}: {cpu * 1e6:,.0f} µs per poll, so one event loop (one core) "
                f"saturates at about {settings.poll_interval / cpu:,.0f} waits polled every "
                f"{settings.poll_interval:g} s ({waits:,} waits need {waits / settings.poll_interval * cpu:.0%} "
                "of a core)."
            )
    return "\n".join(lines)


def section(results: Results, settings: CapacitySettings, profile: Profile | None) -> Section:
    """The table, the targets, what limits each contender, and the profile if one was taken."""
    rows = [row(results, waits, c) for waits in settings.sizes for c in settings.contenders if (waits, c) in results]
    notes = (
        "What limits each contender is CPU: an event loop runs on one core, and every poll costs the client "
        "the CPU time above (at the largest size):\n\n" + headroom(results, settings) + "\n\n"
        "A contender past that point falls behind: its polls queue, detection lags grow, and starting new "
        "waits queues behind the polls (the *time to start all* column). `*` after a memory figure: not all "
        "waits had polled within 30 s; the figure is per wait that had."
    )
    if profile is not None:
        notes += "\n\n" + profile.markdown()
    return Section(
        title="Triggerer capacity",
        method=method_text(settings),
        tables=[markdown_table(HEADER, rows)],
        targets=targets(results, settings),
        notes=notes,
    )


def method_text(settings: CapacitySettings) -> str:
    """How the figures were taken."""
    sizes: Sequence[str] = [f"{n:,}" for n in settings.sizes]
    return f"""N = {", ".join(sizes)} concurrent waits of each contender in one asyncio event loop (the stock
loop, as Airflow's triggerer uses), each in a fresh process (`bench/capacity_worker.py`), {settings.runs} runs;
in every run all contenders and sizes are measured one after the other with the same random appear times.
Contenders: `DevRevSessionTrigger` (this provider), `HttpSensorTrigger` (apache-airflow-providers-http 6.3.0,
the same request with the token in its connection's extras), and a minimal loop on one shared
`aiohttp.ClientSession` (100-connection pool, no Airflow: the practical limit). Triggers are driven as
Airflow's triggerer drives them: built and started one by one with two `await asyncio.sleep(0)` between
(as `TriggerRunner.create_triggers` does), each an asyncio task that iterates `run()` to its end.

The waits start while no session exists (every poll is a 404). Once the server has been asked for all N
sessions, every wait is running and has polled once: memory per wait = (RSS then - RSS before starting,
after one warm-up wait) / N. Then sessions appear at random within {settings.window:g} s; the poll interval is
{settings.poll_interval:g} s. Detection lag = when the wait's event arrived - when its session appeared.
Client CPU per poll = the process's CPU time from the first start to the last event / requests the server
answered. TCP connections = connections the server accepted. Worst stall = the largest lateness of a task
sleeping 50 ms in the same loop. Errors = waits that did not end with a correct "found" event within
{settings.window + 3 * settings.poll_interval + 20:g} s of the sessions starting to appear.

Not included, for any contender: the triggerer's own per-trigger work (greenback portal, log routing,
event persistence). Log lines go to a file, as a triggerer's trigger logs do."""
