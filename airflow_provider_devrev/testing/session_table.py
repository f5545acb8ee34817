"""``devrev-simulator --list``: the sessions a simulator would serve, as a Markdown table.

Markdown, padded to line up, so it reads in a terminal and pastes into documentation as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_devrev.testing.data import isoformat_ms

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from airflow_provider_devrev.testing.sessions_file import SessionLine

__all__ = ["COLUMNS", "ListedSession", "listed_sessions", "render_table"]

COLUMNS = ("session_id", "type/platform", "version_key", "created_at", "crash/ANR", "visible", "source")


@dataclass(frozen=True)
class ListedSession:
    """One row of the table.

    :param version_key: the app version key it is served under.
    :param session: the session object.
    :param visible: when clients first see it, in words.
    :param source: ``seed``, or ``line N`` of the sessions file.
    """

    version_key: str
    session: dict[str, Any]
    visible: str
    source: str

    def cells(self) -> tuple[str, ...]:
        session = self.session
        kind = f"{session['type']}/{session.get('platform', 'web')}"
        return (
            str(session["session_id"]),
            kind,
            self.version_key,
            str(session["created_at"]),
            _incident(session),
            self.visible,
            self.source,
        )


def listed_sessions(
    seeded: Iterable[tuple[str, dict[str, Any]]], from_file: Sequence[SessionLine]
) -> list[ListedSession]:
    """What the simulator serves: the seeded pairs, then the file's lines replacing any with the same key.

    :param seeded: ``(version_key, session)`` pairs of the seeded data set (empty with ``--empty``).
    :param from_file: the sessions file's lines.
    :returns: rows ordered by version key, created_at, then session id.
    """
    rows: dict[tuple[str, str], ListedSession] = {}
    for version_key, session in seeded:
        rows[version_key, str(session["session_id"])] = ListedSession(version_key, session, "from start", "seed")
    for entry in from_file:
        key = (entry.version_key, str(entry.session["session_id"]))
        rows[key] = ListedSession(entry.version_key, entry.session, _visibility(entry), f"line {entry.line}")
    return sorted(rows.values(), key=lambda row: (row.version_key, str(row.session["created_at"]), row.cells()[0]))


def render_table(rows: Sequence[ListedSession]) -> str:
    """The rows as a Markdown table with padded columns (no trailing newline).

    :param rows: the rows, in the order to print.
    """
    table = [COLUMNS, *(row.cells() for row in rows)]
    widths = [max(len(line[column]) for line in table) for column in range(len(COLUMNS))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(COLUMNS), rule, *(line(cells) for cells in table[1:])])


def _incident(session: dict[str, Any]) -> str:
    # Web sessions have neither notion; "-" rather than "no" says the question does not apply.
    if session.get("type") != "mobile":
        return "-"
    marks = [name for name, field in (("crash", "is_crash"), ("ANR", "is_anr")) if session.get(field) is True]
    return "+".join(marks) or "no"


def _visibility(entry: SessionLine) -> str:
    if entry.visible_after_requests is not None:
        return f"from lookup {entry.visible_after_requests}"
    if entry.visible_at is not None:
        return f"from {isoformat_ms(entry.visible_at)}"
    return "from start"
