"""Small statistics and table helpers shared by the benchmarks (no numpy: the bench needs nothing extra)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (0-100) by linear interpolation between closest ranks; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Iterable[float]) -> float:
    """The median, ignoring NaNs; NaN when nothing is left."""
    kept = [v for v in values if not math.isnan(v)]
    return statistics.median(kept) if kept else math.nan


def fmt(value: float, digits: int = 0, unit: str = "") -> str:
    """A number for a table: thousands separators, fixed decimals, an optional unit; ``n/a`` for NaN."""
    if math.isnan(value):
        return "n/a"
    return f"{value:,.{digits}f}{unit}"


def spread(values: Sequence[float], digits: int = 0, unit: str = "") -> str:
    """The range of ``values`` for a table, ``min-max``; ``n/a`` when empty."""
    kept = [v for v in values if not math.isnan(v)]
    if not kept:
        return "n/a"
    return f"{fmt(min(kept), digits)}-{fmt(max(kept), digits, unit)}"


def ratio(value: float, reference: float) -> str:
    """``value / reference`` as ``1.23x``."""
    if math.isnan(value) or math.isnan(reference) or reference == 0:
        return "n/a"
    return f"{value / reference:.2f}x"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A GitHub markdown table; numeric-looking columns are right-aligned."""
    rows = [list(row) for row in rows]
    align = ["---:" if rows and all(_numeric(row[i]) for row in rows) else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _numeric(cell: str) -> bool:
    stripped = cell.replace(",", "").replace("x", "").replace("n/a", "0").strip()
    for unit in (" µs", " ms", " KB", " MB", " s", "%", " B"):
        stripped = stripped.removesuffix(unit)
    try:
        float(stripped)
    except ValueError:
        return False
    return True
