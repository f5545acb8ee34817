"""
Benchmark 6, export rate: runs :mod:`bench.export_worker` in a fresh process against the project's simulator (in
a process of its own, :mod:`bench.simulator_host`) and the benchmark server, and builds the section.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import BenchServer, run_child, simulator_host
from bench.report import Section
from bench.stats import fmt, markdown_table, median, spread

SERVERS = {
    "simulator": "the project's simulator (`DevRevSimulator`, its own process)",
    "bench": "the benchmark server (`bench/server.py`: pages cut from pre-encoded JSON)",
}
LABELS = {
    "devrev_get": "`iter_sessions(platform, version_key, page_size=100)`",
    "requests_get": "hand-written `requests` loop, same query",
    "replay_get": "raw round trips of the same pages (body not decoded)",
    "devrev_post": "`iter_sessions(..., filters=..., created_after=..., created_before=...)`",
    "requests_post": "hand-written `requests` loop, same body",
    "replay_post": "raw round trips of the same pages (body not decoded)",
}
FORMS = {"get": "GET", "post": "POST, filter + date range"}
#: Exports per measurement against the benchmark server, where one lasts about a tenth of a second.
BENCH_REPEAT = 3

Rounds = list[dict[str, list[dict[str, Any]]]]


@dataclass
class ExportSettings:
    """How much to measure."""

    sessions: int = 10_000
    page_size: int = 100
    rounds: int = 5


def run(server: BenchServer, env: Mapping[str, str], log_dir: Path, settings: ExportSettings) -> Section:
    """Measure and describe."""
    server.command(f"list {settings.sessions}")
    try:
        with simulator_host(env, sessions=settings.sessions, page_size=settings.page_size) as simulator:
            child_env = dict(env, AIRFLOW_CONN_DEVREV_SIM=simulator.connection())
            args = ["--sessions", str(settings.sessions), "--page-size", str(settings.page_size)]
            args += ["--rounds", str(settings.rounds), "--warm-up-server", "bench"]
            args += ["--server", f"simulator=devrev_sim,{simulator.url},{simulator.control_port},1"]
            args += ["--server", f"bench=devrev_default,{server.url},{server.control_port},{BENCH_REPEAT}"]
            rounds: Rounds = run_child("export_worker", args, child_env, log_dir)["rounds"]
    finally:
        server.command("list 0")
    return section(rounds, settings)


def runs_of(rounds: Rounds, server: str, contender: str) -> list[dict[str, Any]]:
    """One contender's exports on one server, in round order."""
    return [next(r for r in results[server] if r["contender"] == contender) for results in rounds]


def per_round(rounds: Rounds, server: str, contender: str, reference: str) -> list[float]:
    """``reference``'s wall time over ``contender``'s, round by round (> 1: ``contender`` is faster)."""
    return [
        ref["wall"] / run["wall"]
        for run, ref in zip(runs_of(rounds, server, contender), runs_of(rounds, server, reference), strict=True)
    ]


def table(rounds: Rounds, server: str, settings: ExportSettings) -> str:
    """One server's rows: every contender in both forms."""
    rows = []
    for form in FORMS:
        for kind in ("devrev", "requests", "replay"):
            name = f"{kind}_{form}"
            runs = runs_of(rounds, server, name)
            rates = [settings.sessions / r["wall"] for r in runs]
            pages = runs[0]["requests"]
            if kind == "devrev":
                ratios = per_round(rounds, server, name, f"requests_{form}")
                versus = f"{median(ratios):.2f}x ({spread(ratios, 2)})"
            elif kind == "requests":
                versus = "1.00x"
            else:
                versus = ""
            replay_share = per_round(rounds, server, name, f"replay_{form}")
            rows.append(
                [
                    FORMS[form],
                    LABELS[name],
                    fmt(median(rates), 0),
                    spread(rates),
                    versus,
                    fmt(median(r["cpu"] / settings.sessions * 1e6 for r in runs), 1, " µs"),
                    fmt(median(r["server_cpu"] / pages * 1e3 for r in runs), 2, " ms"),
                    fmt(median(r["server_cpu"] / r["wall"] * 100 for r in runs), 0, "%"),
                    fmt(median(replay_share) * 100, 0, "%") if kind != "replay" else "",
                ]
            )
    header = [
        "form",
        "contender",
        "sessions/s",
        "range over rounds",
        "ours / hand-written (rate)",
        "client CPU per session",
        "server CPU per page",
        "server busy (CPU / wall)",
        "of which raw round trips",
    ]
    return f"**Against {SERVERS[server]}**\n\n" + markdown_table(header, rows)


def shares(rounds: Rounds, server: str, form: str) -> tuple[float, float, float]:
    """For ``iter_sessions`` in ``form``: server busy share, round-trip share, client CPU share (medians)."""
    ours = runs_of(rounds, server, f"devrev_{form}")
    busy = median(r["server_cpu"] / r["wall"] for r in ours)
    trips = median(per_round(rounds, server, f"devrev_{form}", f"replay_{form}"))
    client = median(r["cpu"] / r["wall"] for r in ours)
    return busy, trips, client


def notes(rounds: Rounds, settings: ExportSettings) -> str:
    """What the figures say about where the time goes, computed from them."""
    lines = []
    for form, label in FORMS.items():
        busy, trips, client = shares(rounds, "simulator", form)
        ratio = median(per_round(rounds, "simulator", f"devrev_{form}", f"requests_{form}"))
        fast_ratio = median(per_round(rounds, "bench", f"devrev_{form}", f"requests_{form}"))
        ours = runs_of(rounds, "bench", f"devrev_{form}")
        hand = runs_of(rounds, "bench", f"requests_{form}")
        extra = median(r["cpu"] for r in ours) - median(r["cpu"] for r in hand)
        pages = ours[0]["requests"]
        lines.append(
            f"- {label}: against the simulator, the simulator's own CPU is {busy:.0%} of `iter_sessions`' wall "
            f"time and the raw round trips of the same pages {trips:.0%}; the client's CPU is {client:.0%}. "
            f"Ours / hand-written: {ratio:.2f}x there, {fast_ratio:.2f}x against the benchmark server, where the "
            f"client is what is measured: the hook's extra client CPU is {extra * 1e3 / pages:+.2f} ms per "
            f"{settings.page_size}-session page ({extra / settings.sessions * 1e6:+.1f} µs per session)."
        )
    return "\n".join(lines)


def section(rounds: Rounds, settings: ExportSettings) -> Section:
    """The tables of this benchmark."""
    pages = -(-settings.sessions // settings.page_size)
    return Section(
        title="Export rate (`iter_sessions`)",
        method=f"""{settings.sessions:,} sessions exported page by page ({settings.page_size} per page, {pages} pages,
following `next_cursor`) in one fresh process (`bench/export_worker.py`), {settings.rounds} rounds; in each, every
contender exports everything once from each server, in an order rotated from round to round. Contenders:
`DevRevHook.iter_sessions` in its GET form (no filter) and its POST form (`filters={{"is_crash": True}}` and a
`created_at` range); a hand-written loop on a plain keep-alive `requests.Session` sending the same query or the
same JSON body, `response.json()`, yielding the page's sessions and following `next_cursor` (what a user rolls
with the http provider); and the raw round trips: the hand-written loop's recorded page requests sent again on a
plain session, the body read but not decoded (server, loopback and `requests` alone). Every seeded session
matches the filter and the range, so all export the same {settings.sessions:,}; the hook also checks each
session's `created_at` against the half-open range. Each export builds its contender anew (its TCP connection
is in the figure); the hook's connection lookup is not. Sessions/s: median over the rounds, and the range;
ours / hand-written: the ratio of rates taken round by round, median and range. Client CPU: this process's
CPU time; server CPU: the server process's. Before the rounds, one untimed export of each contender (from the
benchmark server) warms the imports and code paths up.

Two servers, because they answer different questions. The project's simulator (`DevRevSimulator`, run in a
process of its own so that its threads do not take the measuring process's GIL) is faithful: it filters and
pages the {settings.sessions:,} sessions for every page request, under one lock. Its page cost grows with the
number of sessions it holds (it scans them all for every page), so against it the export measures mostly
the simulator. The benchmark server answers the same pages from JSON encoded once, so against it the export
measures the client; one export there lasts about a tenth of a second, so each of its measurements is
{BENCH_REPEAT} exports back to back (each by a contender built anew), and the figures are per export. A real
DevRev adds network latency to every page, which neither has.
The machine is shared (2 cores, other jobs running): compare ratios within a server, not absolute rates.""",
        tables=[table(rounds, "simulator", settings), table(rounds, "bench", settings)],
        notes=notes(rounds, settings),
    )
