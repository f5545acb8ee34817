"""The ``--sessions FILE`` of ``devrev-simulator``: JSON Lines of sessions to serve, checked line by line.

One JSON object per line::

    {"version_key": "com.acme.shop@5.2.0", "session": {...a session as DevRev returns it...}}
    {"version_key": "com.acme.shop@5.2.0", "session": {...}, "visible_after_requests": 3}
    {"version_key": "com.acme.shop@5.2.0", "session": {...}, "visible_at": "2026-01-05T10:00:00Z"}

``visible_after_requests`` N: the first N-1 ``sessions.get`` lookups of that session answer 404, the N-th
finds it (a session that is uploaded while a sensor waits). ``visible_at``: an ISO-8601 time (no zone means
UTC) from which it is served. Blank lines and lines starting with ``#`` are skipped. Each ``session`` must be
valid under the contract's session schema (:mod:`~airflow_provider_devrev.testing.session_schema`): every
required field there, of its type, enums within their values.

Pure: reading and checking the file sends nothing and starts nothing, so a bad file fails before the
simulator listens, with :class:`SessionsFileError` naming the line and what is wrong with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_devrev.testing.session_schema import check_session
from airflow_provider_devrev.testing.store import session_platform

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["SessionLine", "SessionsFileError", "parse_sessions", "read_sessions_file"]

_KEYS = frozenset({"version_key", "session", "visible_after_requests", "visible_at"})


class SessionsFileError(ValueError):
    """A ``--sessions`` file the simulator cannot serve; the message names the line and the problem."""


@dataclass(frozen=True)
class SessionLine:
    """One session from a sessions file.

    :param line: its 1-based line number in the file.
    :param version_key: the app version key requests must name to find it.
    :param session: the session object, served as given.
    :param visible_after_requests: the lookup that first finds it (None: from the start).
    :param visible_at: when it starts being served, aware UTC (None: from the start).
    """

    line: int
    version_key: str
    session: dict[str, Any]
    visible_after_requests: int | None = None
    visible_at: datetime | None = None


def read_sessions_file(path: Path) -> list[SessionLine]:
    """Read and check a sessions file.

    :param path: the JSON Lines file.
    :raises SessionsFileError: for a file that cannot be read (not UTF-8, missing) or a bad line.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SessionsFileError(f"cannot read sessions file {str(path)!r}: {exc}") from None
    return parse_sessions(text)


def parse_sessions(text: str) -> list[SessionLine]:
    """Parse the text of a sessions file; see the module docstring for the format.

    :param text: the file's content.
    :raises SessionsFileError: at the first bad line, naming its number and the problem.
    """
    result: list[SessionLine] = []
    first_seen: dict[tuple[str, str], int] = {}
    # Lines end at "\n" only (a "\r" before it is stripped): str.splitlines would also split at U+2028 and
    # U+2029, which json.dumps(..., ensure_ascii=False) writes raw inside strings.
    for number, raw in enumerate(text.split("\n"), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            entry = _parse_line(stripped)
        except ValueError as exc:
            raise SessionsFileError(f"line {number}: {exc}") from None
        entry = replace(entry, line=number)
        key = (entry.version_key, str(entry.session["session_id"]))
        if key in first_seen:
            raise SessionsFileError(
                f"line {number}: session {key[1]!r} under version key {key[0]!r} is already on line {first_seen[key]}"
            )
        first_seen[key] = number
        result.append(entry)
    return result


def _parse_line(text: str) -> SessionLine:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    unknown = sorted(set(value) - _KEYS)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}; the keys are {sorted(_KEYS)}")
    version_key = value.get("version_key")
    if not isinstance(version_key, str) or not version_key.strip():
        raise ValueError(f"'version_key' must be a non-empty string, got {version_key!r}")
    session = value.get("session")
    if not isinstance(session, dict):
        raise ValueError(f"'session' must be a JSON object (a session as DevRev returns it), got {session!r:.80}")
    try:
        session_platform(session)
    except ValueError as exc:
        raise ValueError(f"'session': {exc}") from None
    # Every field the contract requires, of its type: a DAG reading a served session relies on them.
    check_session(session)
    after = value.get("visible_after_requests")
    at_text = value.get("visible_at")
    if after is not None and at_text is not None:
        raise ValueError("give 'visible_after_requests' or 'visible_at', not both")
    if after is not None and (isinstance(after, bool) or not isinstance(after, int) or after < 1):
        raise ValueError(f"'visible_after_requests' must be an integer >= 1, got {after!r}")
    return SessionLine(0, version_key, session, after, _visible_at(at_text))


def _visible_at(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"'visible_at' must be an ISO-8601 time string, got {value!r}")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise ValueError(f"'visible_at' is not an ISO-8601 time: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
