"""
Run the benchmarks, print one table per benchmark, and write docs/benchmarks.md.

``python -m bench`` (what ``make bench`` runs) measures everything at full size; ``--help`` lists the knobs.
The document is written only when every benchmark ran (or ``--doc`` names a file), so a partial run never
overwrites the full one; ``--merge`` puts a partial run's sections into the existing document instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench import bulk_fetch, capacity, export_rate, hook_overhead, import_cost, plots, triggerer_row, worker_cost
from bench.contenders import CONTENDERS
from bench.harness import REPO, BenchServer, airflow_environment, airflow_home, bench_server
from bench.report import Section, carried_sections, document, load, merge, save

BENCHMARKS = ("hook", "capacity", "imports", "worker", "export", "bulk", "triggerer")
DEFAULT_DOC = REPO / "docs" / "benchmarks.md"
#: Hand-written analysis (what limits us, profiles explained) placed in the document after the targets.
ANALYSIS = Path(__file__).with_name("analysis.md")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--only", default=",".join(BENCHMARKS), help=f"comma-separated subset of {BENCHMARKS}")
    parser.add_argument("--sizes", default="1000,2000,10000", help="concurrent waits for the capacity benchmark")
    parser.add_argument("--runs", type=int, default=3, help="runs of the capacity and hook benchmarks (median)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS), help="capacity contenders")
    parser.add_argument(
        "--poll-intervals", default="2,5", help="capacity: poll intervals (s), each measured at every size"
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=5.0,
        help="the worker-cost benchmark's and the real triggerer's poll interval",
    )
    parser.add_argument("--window", type=float, default=20.0, help="sessions appear at random within it (s)")
    parser.add_argument(
        "--min-polls", type=int, default=7000, help="capacity: lengthen the window of a configuration with fewer polls"
    )
    parser.add_argument("--calls", type=int, default=2000, help="sequential calls per hook-overhead run")
    parser.add_argument("--import-repeat", type=int, default=5, help="fresh interpreters per DAG-parse row")
    parser.add_argument("--export-sessions", type=int, default=10_000, help="sessions per export (export)")
    parser.add_argument("--page-size", type=int, default=100, help="sessions per list page (export)")
    parser.add_argument("--export-rounds", type=int, default=5, help="rounds of the export benchmark (median)")
    parser.add_argument("--bulk-sessions", type=int, default=300, help="sessions per get_sessions call (bulk)")
    parser.add_argument("--concurrency", default="1,8,32", help="max_concurrency values (bulk)")
    parser.add_argument("--rate-limit", default="50/1.0", help="the simulator's REQUESTS/SECONDS limit (bulk)")
    parser.add_argument("--latency", type=float, default=0.01, help="seconds added per request, (c) of bulk")
    parser.add_argument("--bulk-rounds", type=int, default=3, help="rounds of the bulk benchmark (median)")
    parser.add_argument(
        "--limited-latency",
        type=float,
        default=0.0,
        help="bulk: also a simulator with the rate limit AND this latency (s; off by default; use --concurrency 8,32)",
    )
    parser.add_argument("--triggers", type=int, default=1000, help="triggers the real triggerer holds (triggerer)")
    parser.add_argument(
        "--triggerer-contenders",
        default=",".join(triggerer_row.CONTENDERS),
        help="the real triggerer's contenders (triggerer)",
    )
    parser.add_argument("--triggerer-window", type=float, default=30.0, help="the real triggerer's steady window (s)")
    parser.add_argument("--profile", action="store_true", help="add a py-spy profile of the DevRev trigger")
    parser.add_argument("--doc", type=Path, help=f"write the document here (default: {DEFAULT_DOC} after a full run)")
    parser.add_argument("--save", type=Path, help="also keep the measured sections here (JSON), for --render")
    parser.add_argument("--render", type=Path, help="measure nothing: write the document from a --save file")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="put the sections measured (or rendered) into the existing document, keeping every other section",
    )
    parser.add_argument(
        "--provider-path",
        type=Path,
        help="measure the provider package found in this directory instead (e.g. a checkout with a fix)",
    )
    return parser.parse_args(argv)


def measuring_environment(home: Path, server_url: str, provider_path: Path | None) -> dict[str, str]:
    """The children's environment; ``provider_path`` goes first on their ``PYTHONPATH``."""
    env = airflow_environment(home, server_url)
    if provider_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(provider_path.resolve()), env["PYTHONPATH"]])
    return env


def settings_text(args: argparse.Namespace, only: list[str]) -> str:
    """What the document says it was produced with."""
    parts = []
    if "hook" in only:
        parts.append(f"hook: {args.calls:,} calls x {args.runs} runs")
    if "capacity" in only:
        sizes = "/".join(f"{int(n):,}" for n in args.sizes.split(","))
        polls = "/".join(f"{float(p):g}" for p in args.poll_intervals.split(","))
        parts.append(
            f"capacity: {sizes} waits x {polls} s polls x {args.runs} runs{', profiled' if args.profile else ''}"
        )
    if "imports" in only:
        parts.append(f"imports: {args.import_repeat} interpreters per row")
    if "export" in only:
        parts.append(f"export: {args.export_sessions:,} sessions x {args.export_rounds} rounds")
    if "bulk" in only:
        parts.append(
            f"bulk: {args.bulk_sessions:,} sessions at {args.concurrency.replace(',', '/')}, rate limit "
            f"{args.rate_limit}, {args.latency * 1000:g} ms latency"
            + (f", rate limit + {args.limited_latency * 1000:g} ms" if args.limited_latency else "")
            + f", x {args.bulk_rounds} rounds"
        )
    if "triggerer" in only:
        parts.append(
            f"real triggerer: {args.triggers:,} triggers x {args.poll_interval:g} s polls, "
            f"{args.triggerer_window:g} s window"
        )
    if args.provider_path:
        parts.append(f"provider from {args.provider_path}")
    return "; ".join(parts)


def run_benchmarks(args: argparse.Namespace, only: list[str]) -> tuple[list[Section], bool]:
    """Every benchmark asked for, printing each table as soon as it is measured."""
    sections: list[Section] = []
    with bench_server() as server, airflow_home() as home:
        env = measuring_environment(home, server.url, args.provider_path)
        logs = home / "logs"
        logs.mkdir()
        for name in only:
            started = time.monotonic()
            print(f"\n==> {name} ...", flush=True)
            section = run_one(name, args, server, env, logs)
            print(f"\n{section.markdown()}\n\n({time.monotonic() - started:.0f} s)", flush=True)
            sections.append(section)
        return sections, server.uvloop


def run_one(name: str, args: argparse.Namespace, server: BenchServer, env: dict[str, str], logs: Path) -> Section:
    """One benchmark by name."""
    if name == "hook":
        return hook_overhead.run(server, env, logs, hook_overhead.HookSettings(args.calls, args.runs))
    if name == "capacity":
        settings = capacity.CapacitySettings(
            sizes=tuple(int(n) for n in args.sizes.split(",")),
            runs=args.runs,
            poll_intervals=tuple(float(p) for p in args.poll_intervals.split(",")),
            window=args.window,
            min_polls=args.min_polls,
            contenders=tuple(args.contenders.split(",")),
            profile=args.profile,
        )
        return capacity.run(server, env, logs, settings, progress=lambda line: print(line, flush=True))
    if name == "imports":
        return import_cost.run(env, args.import_repeat)
    if name == "worker":
        return worker_cost.run(server, env, logs, args.poll_interval)
    if name == "export":
        export = export_rate.ExportSettings(args.export_sessions, args.page_size, args.export_rounds)
        return export_rate.run(server, env, logs, export)
    if name == "bulk":
        bulk = bulk_fetch.BulkSettings(
            sessions=args.bulk_sessions,
            concurrency=tuple(int(c) for c in args.concurrency.split(",")),
            rate_limit=args.rate_limit,
            latency=args.latency,
            rounds=args.bulk_rounds,
            limited_latency=args.limited_latency,
        )
        return bulk_fetch.run(server, env, logs, bulk)
    if name == "triggerer":
        row = triggerer_row.RowSettings(
            triggers=args.triggers,
            poll_interval=args.poll_interval,
            contenders=tuple(c for c in args.triggerer_contenders.split(",") if c),
            window=args.triggerer_window,
        )
        return triggerer_row.run(server, env, logs, row, progress=lambda line: print(line, flush=True))
    raise SystemExit(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")


def main(argv: list[str] | None = None) -> None:
    """Run, print, write (or only write, from a saved run)."""
    args = parse_args(argv)
    if args.render is not None:
        sections, context = load(args.render)
        write_document(args.doc or DEFAULT_DOC, sections, context, merging=args.merge)
        return
    only = [name for name in args.only.split(",") if name]
    started = time.monotonic()
    sections, uvloop = run_benchmarks(args, only)
    command = measurement_command(sys.argv[1:] if argv is None else argv)
    context = {"command": command, "settings": settings_text(args, only), "server_uvloop": uvloop}
    if args.save is not None:
        save(args.save, sections, **context)
    doc = args.doc or (DEFAULT_DOC if set(only) == set(BENCHMARKS) or args.merge else None)
    if doc is not None:
        write_document(doc, sections, context, merging=args.merge)
    print(f"all benchmarks took {time.monotonic() - started:.0f} s")


def measurement_command(argv: list[str]) -> str:
    """The command line as the document shows it: without the options that only say where files go."""
    kept, skip = ["python -m bench"], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--save", "--doc", "--render"):
            skip = True
        elif arg != "--merge" and not arg.startswith(("--save=", "--doc=", "--render=")):
            kept.append(arg)
    return " ".join(kept)


def write_document(doc: Path, sections: list[Section], context: dict[str, Any], *, merging: bool = False) -> None:
    """
    docs/benchmarks.md: the sections, plus the hand-written analysis when there is one; ``merging``: the
    sections go into the document already at ``doc``, whose other sections stay as they are.
    """
    analysis = ANALYSIS.read_text() if ANALYSIS.exists() else ""
    doc.parent.mkdir(parents=True, exist_ok=True)
    if merging and doc.exists():
        doc.write_text(merge(doc.read_text(), sections, analysis=analysis, **context))
    else:
        carried = carried_sections(doc.read_text(), sections) if doc.exists() else []
        doc.write_text(document(sections, analysis=analysis, carried=carried, **context))
    print(f"\nwrote {doc}")
    # The plots lead the document and are drawn from its tables, so they follow every rewrite of it.
    for path in plots.write(doc, doc.parent / "img"):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
