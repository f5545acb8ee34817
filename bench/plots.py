"""
The benchmark plots in ``docs/img/``, drawn from the figures the repository already keeps, and the block of
``docs/benchmarks.md`` that shows them first.

``python -m bench`` draws them after writing the document; ``python -m bench.plots`` draws them again without
measuring anything (seconds). The figures come from the document's tables (*Triggerer capacity*: CPU per poll
and memory per wait against the number of waits, one line per contender and poll interval; *Real triggerer*:
CPU per poll and RSS per trigger, one bar per contender) and from :data:`RATE_LIMIT_FIGURES`, a JSON file the
rate-limit benchmark writes: ``{"title": ..., "rows": [{"label": "before", "<measure>": <number>, ...}, ...]}``,
one bar per row in one panel per measure. A plot whose figures are missing is not drawn, and not shown.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.svg import COLOURS, Panel, Series, bar_panels, line_chart

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "benchmarks.md"
IMAGES = REPO / "docs" / "img"
#: Where ``python -m bench.rate_limit`` keeps its before/after figures for this plot.
RATE_LIMIT_FIGURES = REPO / "bench" / "results" / "rate_limit.json"
START, END = "<!-- plots:start (drawn by bench/plots.py; do not edit) -->", "<!-- plots:end -->"
#: Each contender's colour, in every plot; contenders not named here take the next free one.
CONTENDER_COLOURS = {
    "DevRevSessionTrigger": COLOURS[0],
    "minimal shared-session loop": COLOURS[1],
    "HttpSensorTrigger": COLOURS[2],
}


CAPTION = (
    "Drawn from the tables below by `python -m bench.plots` (`make bench` draws them again after measuring). The "
    "capacity plots show the contenders the capacity table has: `make bench-full` adds `HttpSensorTrigger`."
)


@dataclass(frozen=True)
class Plot:
    """One drawn plot: its file name in ``docs/img/``, its alt text and its SVG."""

    name: str
    alt: str
    svg: str


def sections(document: str) -> dict[str, str]:
    """The document's ``## `` sections by title."""
    blocks = re.split(r"(?m)^(?=## )", document)[1:]
    return {block.splitlines()[0][3:].strip(): block for block in blocks}


def tables(section: str) -> list[list[dict[str, str]]]:
    """Every markdown table of a section, as rows keyed by the header's cells."""
    found: list[list[dict[str, str]]] = []
    lines = section.splitlines()
    for index, line in enumerate(lines[:-1]):
        if line.startswith("|") and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[index + 1].strip()):
            header = _cells(line)
            rows = []
            for row in lines[index + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append(dict(zip(header, _cells(row), strict=False)))
            found.append(rows)
    return found


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def number(text: str) -> float:
    """The first number in a cell: ``11.4 KB *`` → 11.4, ``1,000`` → 1000."""
    found = re.search(r"-?\d[\d,]*(?:\.\d+)?", text)
    if found is None:
        raise ValueError(f"no number in {text!r}")
    return float(found.group().replace(",", ""))


def _colour(name: str, used: dict[str, str]) -> str:
    if name not in used:
        used[name] = CONTENDER_COLOURS.get(name) or COLOURS[(len(used) + 3) % len(COLOURS)]
    return used[name]


def capacity_plots(section: str) -> list[Plot]:
    """CPU per poll and memory per wait against waits, one line per contender and poll interval."""
    rows = [row for table in tables(section) for row in table if {"poll", "waits", "contender"} <= row.keys()]
    if not rows:
        return []
    polls = sorted({row["poll"] for row in rows}, key=number)
    contenders = list(dict.fromkeys(row["contender"] for row in rows))
    used: dict[str, str] = {}
    plots = []
    for column, unit, name, what in (
        ("client CPU per poll", "µs", "bench-capacity-cpu.svg", "CPU per poll"),
        ("memory per wait", "KB", "bench-capacity-memory.svg", "Memory per wait"),
    ):
        series = []
        for contender in contenders:
            for index, poll in enumerate(polls):
                points = tuple(
                    (number(row["waits"]), number(row[column]))
                    for row in rows
                    if row["contender"] == contender and row["poll"] == poll
                )
                label = f"{contender}, {poll} poll"
                series.append(Series(label, points, _colour(contender, used), dashed=index > 0))
        title = f"{what}, waits in one event loop (lower is better)"
        svg = line_chart(title, "concurrent waits", f"{what} ({unit})", series)
        plots.append(Plot(name, f"{what} against concurrent waits, per contender and poll interval", svg))
    return plots


def triggerer_plot(section: str) -> list[Plot]:
    """The real triggerer: CPU per poll and RSS per trigger, one bar per contender."""
    rows = [row for table in tables(section) for row in table if "CPU per poll, triggerer" in row]
    if not rows:
        return []
    used: dict[str, str] = {}
    colours = {row["contender"]: _colour(row["contender"], used) for row in rows}
    poll, triggers = rows[0].get("poll", ""), rows[0].get("triggers", "")
    panels = [
        Panel(title, unit, tuple((row["contender"], number(row[column])) for row in rows))
        for column, title, unit in (
            ("CPU per poll, triggerer", "CPU per poll", "µs"),
            ("RSS per trigger, triggerer", "RSS per trigger", "KB"),
        )
    ]
    title = f"A real airflow triggerer holding {triggers} triggers, {poll} poll (lower is better)"
    return [
        Plot(
            "bench-real-triggerer.svg",
            "Real triggerer: CPU per poll and RSS per trigger",
            bar_panels(title, panels, colours),
        )
    ]


def rate_limit_plot(figures: dict[str, Any]) -> list[Plot]:
    """The rate-limit row: one panel per measure, one bar per row (before, after)."""
    rows = figures.get("rows") or []
    if not rows:
        return []
    labels = [str(row["label"]) for row in rows]
    measures = [key for key in rows[0] if key != "label" and isinstance(rows[0][key], int | float)]
    panels = [
        Panel(measure, "", tuple((str(row["label"]), float(row[measure])) for row in rows)) for measure in measures
    ]
    colours = {label: COLOURS[(3 + index) % len(COLOURS)] for index, label in enumerate(labels)}
    title = str(figures.get("title") or "Rate limit shared by every wait")
    return [Plot("bench-rate-limit.svg", title, bar_panels(title, panels, colours))]


def draw(document: str, rate_limit: dict[str, Any] | None = None) -> list[Plot]:
    """Every plot the figures allow, in the order the document shows them."""
    found = sections(document)
    plots = capacity_plots(found.get("Triggerer capacity", ""))
    plots += triggerer_plot(found.get("Real triggerer", ""))
    plots += rate_limit_plot(rate_limit or {})
    return plots


def lead(document: str, plots: Iterable[Plot]) -> str:
    """``document`` with the plots block right under its title, replacing the one it had."""
    if START in document:
        before, rest = document.split(START, 1)
        document = before.rstrip("\n") + "\n\n" + rest.split(END, 1)[1].lstrip("\n")
    images = "\n\n".join(f"![{plot.alt}](img/{plot.name})" for plot in plots)
    if not images:
        return document
    title, _, body = document.partition("\n\n")
    return f"{title}\n\n{START}\n\n{images}\n\n{CAPTION}\n\n{END}\n\n{body}"


def write(doc: Path = DOC, images: Path = IMAGES, rate_limit: Path = RATE_LIMIT_FIGURES) -> list[Path]:
    """Draw the plots from ``doc`` (and ``rate_limit`` when it exists) into ``images``; put them at ``doc``'s top."""
    figures = json.loads(rate_limit.read_text(encoding="utf-8")) if rate_limit.exists() else None
    text = doc.read_text(encoding="utf-8")
    plots = draw(text, figures)
    images.mkdir(parents=True, exist_ok=True)
    written = []
    for plot in plots:
        path = images / plot.name
        path.write_text(plot.svg, encoding="utf-8")
        written.append(path)
    doc.write_text(lead(text, plots), encoding="utf-8")
    return written


def main(argv: list[str] | None = None) -> None:
    """Draw the plots again from the figures kept, measuring nothing."""
    parser = argparse.ArgumentParser(prog="python -m bench.plots", description=main.__doc__)
    parser.add_argument("--doc", type=Path, default=DOC, help="the benchmarks document to read and lead")
    parser.add_argument("--images", type=Path, default=IMAGES, help="where the SVG files go")
    parser.add_argument("--rate-limit", type=Path, default=RATE_LIMIT_FIGURES, help="the rate-limit figures (JSON)")
    args = parser.parse_args(argv)
    for path in write(args.doc, args.images, args.rate_limit):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
