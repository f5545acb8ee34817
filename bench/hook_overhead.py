"""Benchmark 2, hook overhead: runs :mod:`bench.hook_worker` in a fresh process and builds its section."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import BenchServer, run_child
from bench.report import Section, Target
from bench.stats import fmt, markdown_table, median

RATIO_TARGET = 1.10
LABELS = {
    "requests": "raw `requests.Session().get` (keep-alive)",
    "devrev": "`DevRevHook.get_session`",
    "http": "`HttpHook.run` (providers-http 6.3.0), for reference",
}


@dataclass
class HookSettings:
    """How much to measure."""

    calls: int = 2000
    runs: int = 3


def run(server: BenchServer, env: Mapping[str, str], log_dir: Path, settings: HookSettings) -> Section:
    """Measure and describe."""
    args = ["--calls", str(settings.calls), "--runs", str(settings.runs)]
    args += ["--base-url", server.url, "--control-port", str(server.control_port)]
    rounds: list[list[dict[str, Any]]] = run_child("hook_worker", args, env, log_dir)["rounds"]
    return section(rounds, settings)


def by_contender(rounds: list[list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The runs of each contender, in run order."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for results in rounds:
        for result in results:
            grouped.setdefault(result["contender"], []).append(result)
    return grouped


def p50_ratios(rounds: list[list[dict[str, Any]]], name: str) -> list[float]:
    """``name``'s p50 over the raw session's p50, run by run."""
    ratios = []
    for results in rounds:
        p50 = {result["contender"]: result["p50"] for result in results}
        ratios.append(p50[name] / p50["requests"])
    return ratios


def section(rounds: list[list[dict[str, Any]]], settings: HookSettings) -> Section:
    """The tables and targets of this benchmark."""
    grouped = by_contender(rounds)
    rows = []
    for name, runs in grouped.items():
        ratio = median(p50_ratios(rounds, name)) if name != "requests" else 1.0
        rows.append(
            [
                LABELS.get(name, name),
                fmt(median(r["p50"] * 1e6 for r in runs), 0, " µs"),
                fmt(median(r["p99"] * 1e6 for r in runs), 0, " µs"),
                f"{ratio:.2f}x",
                fmt(median(r["cpu_per_call"] * 1e6 for r in runs), 0, " µs"),
                f"{max(r['connections'] for r in runs)} for {runs[0]['requests']:,} calls",
            ]
        )
    header = ["contender", "p50 per call", "p99 per call", "p50 vs raw", "CPU per call", "TCP connections opened"]
    devrev = grouped["devrev"]
    ratio = median(p50_ratios(rounds, "devrev"))
    connections = max(r["connections"] for r in devrev)
    return Section(
        title="Hook overhead (synchronous calls)",
        method=f"""{settings.calls:,} sequential calls per contender and run ({settings.runs} runs, after 50 warm-up
calls that count for connections only), all fetching the same existing session (200, ~700-byte body) from
the benchmark server over loopback, in one fresh process (`bench/hook_worker.py`). Each run builds every
contender anew and rotates their order. The raw session sends the hook's exact URL and headers. CPU per
call is process CPU time over the timed calls; connections are the server's accepted TCP connections.""",
        tables=[markdown_table(header, rows)],
        targets=[
            Target("hook p50 vs raw requests", f"≤ {RATIO_TARGET:.2f}x", f"{ratio:.2f}x", ratio <= RATIO_TARGET),
            Target("TCP connections, whole hook run", "1", str(connections), connections == 1),
        ],
    )
