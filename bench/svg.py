"""Plain SVG charts, written as text: no plotting library to install, and a re-drawn plot diffs line by line.

Two shapes, what the benchmark plots need: a line chart (a value against the number of waits, one line per
series) and horizontal bars (one panel per measure, one bar per contender). Every series or bar group is a
``<g class="series" data-series="name">`` with a ``<title>`` per point, so a reader hovering sees the figure and
a test can find each series by name.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

WIDTH, LINE_HEIGHT = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 40, 70
FAMILY = 'font-family="sans-serif"'
FONT = f'{FAMILY} font-size="12"'
#: A fixed colour per contender, the same in every plot.
COLOURS = ("#1f77b4", "#7f7f7f", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")


@dataclass(frozen=True)
class Series:
    """One line: ``points`` are ``(x, y)``; ``dashed`` tells apart two series of one contender."""

    name: str
    points: tuple[tuple[float, float], ...]
    colour: str
    dashed: bool = False


def _number(value: float) -> str:
    """Axis and tooltip text: thousands separated, at most three significant decimals."""
    if value >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _open(width: int, height: int, title: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label={quoteattr(title)}>',
        f"<title>{escape(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2:.0f}" y="22" text-anchor="middle" {FAMILY} font-size="15" font-weight="bold">'
        f"{escape(title)}</text>",
    ]


def _ticks(top: float) -> list[float]:
    """About five round ticks from 0 to at least ``top``."""
    if top <= 0:
        return [0.0, 1.0]
    step = 10 ** math.floor(math.log10(top / 5))
    for multiple in (1, 2, 2.5, 5, 10):
        if top / (step * multiple) <= 6:
            step *= multiple
            break
    return [i * step for i in range(math.ceil(top / step) + 1)]


def line_chart(title: str, x_label: str, y_label: str, series: Sequence[Series], *, log_x: bool = True) -> str:
    """A line chart from 0 on the y axis; the x axis is logarithmic by default (1,000 to 10,000 waits).

    :param title: shown above the plot and as its accessible name.
    :param x_label: the x axis's caption; its ticks are the x values of the points.
    :param y_label: the y axis's caption, with its unit.
    :param series: the lines, drawn in order, with a legend below the plot.
    :param log_x: place x values on a logarithmic scale.
    """
    xs = sorted({x for s in series for x, _ in s.points})
    ys = [y for s in series for _, y in s.points]
    ticks = _ticks(max(ys, default=1.0))
    legend_rows = math.ceil(len(series) / 2)
    height = LINE_HEIGHT + 18 * legend_rows
    plot_w, plot_h = WIDTH - LEFT - RIGHT, LINE_HEIGHT - TOP - BOTTOM
    scale = math.log10 if log_x else float
    lo, hi = (scale(xs[0]), scale(xs[-1])) if xs else (0.0, 1.0)

    def px(x: float) -> float:
        return LEFT + (plot_w / 2 if hi == lo else (scale(x) - lo) / (hi - lo) * plot_w)

    def py(y: float) -> float:
        return TOP + plot_h - y / ticks[-1] * plot_h

    out = _open(WIDTH, height, title)
    for tick in ticks:
        out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{py(tick):.1f}" y2="{py(tick):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{py(tick) + 4:.1f}" text-anchor="end" {FONT}>{_number(tick)}</text>')
    for x in xs:
        out.append(f'<text x="{px(x):.1f}" y="{TOP + plot_h + 18}" text-anchor="middle" {FONT}>{_number(x)}</text>')
    out.append(f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + plot_h}" stroke="black"/>')
    out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{TOP + plot_h}" y2="{TOP + plot_h}" stroke="black"/>')
    x_middle = LEFT + plot_w / 2
    out.append(f'<text x="{x_middle:.0f}" y="{TOP + plot_h + 38}" text-anchor="middle" {FONT}>{escape(x_label)}</text>')
    out.append(
        f'<text transform="translate(16 {TOP + plot_h / 2:.0f}) rotate(-90)" text-anchor="middle" {FONT}>'
        f"{escape(y_label)}</text>"
    )
    for index, line in enumerate(series):
        dash = ' stroke-dasharray="6 4"' if line.dashed else ""
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in line.points)
        out.append(f'<g class="series" data-series={quoteattr(line.name)}>')
        out.append(f'<polyline points="{points}" fill="none" stroke="{line.colour}" stroke-width="2"{dash}/>')
        for x, y in line.points:
            tip = escape(f"{line.name}: {_number(x)} -> {_number(y)}")
            out.append(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{line.colour}"><title>{tip}</title></circle>'
            )
        out.append("</g>")
        lx = LEFT + (index % 2) * (plot_w / 2)
        ly = LINE_HEIGHT - 8 + 18 * (index // 2)
        out.append(
            f'<line x1="{lx:.0f}" x2="{lx + 24:.0f}" y1="{ly - 4}" y2="{ly - 4}" stroke="{line.colour}" '
            f'stroke-width="2"{dash}/>'
        )
        out.append(f'<text x="{lx + 30:.0f}" y="{ly}" {FONT}>{escape(line.name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


@dataclass(frozen=True)
class Panel:
    """One measure: a bar per ``(label, value)``, on its own scale from 0."""

    title: str
    unit: str
    bars: tuple[tuple[str, float], ...]


def bar_panels(title: str, panels: Sequence[Panel], colours: dict[str, str]) -> str:
    """Horizontal bars, one panel per measure stacked top to bottom, each bar labelled with its figure.

    :param title: shown above the plot and as its accessible name.
    :param panels: the measures; a label's bars share one ``data-series`` group across panels.
    :param colours: a colour per bar label.
    """
    labels = list(dict.fromkeys(label for panel in panels for label, _ in panel.bars))
    bar_h, gap, label_w = 22, 6, 190
    panel_h = 24 + len(labels) * (bar_h + gap) + 14
    height = TOP + panel_h * len(panels)
    plot_w = WIDTH - label_w - RIGHT - 90
    out = _open(WIDTH, height, title)
    groups: dict[str, list[str]] = {label: [] for label in labels}
    for index, panel in enumerate(panels):
        y0 = TOP + index * panel_h
        out.append(f'<text x="{LEFT - 60}" y="{y0 + 16}" {FONT} font-weight="bold">{escape(panel.title)}</text>')
        top = max((value for _, value in panel.bars), default=1.0) or 1.0
        for row, (label, value) in enumerate(panel.bars):
            y = y0 + 24 + row * (bar_h + gap)
            w = value / top * plot_w
            text = f"{_number(value)} {panel.unit}".strip()
            groups[label].append(
                f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colours.get(label, COLOURS[0])}">'
                f"<title>{escape(f'{label}, {panel.title}: {text}')}</title></rect>"
            )
            groups[label].append(f'<text x="{label_w + w + 6:.1f}" y="{y + 15}" {FONT}>{escape(text)}</text>')
            out.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" {FONT}>{escape(label)}</text>')
    for label in labels:
        out.append(f'<g class="series" data-series={quoteattr(label)}>')
        out.extend(groups[label])
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"
