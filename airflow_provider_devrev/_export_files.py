"""
What an export already wrote for its interval: its file and the late sweeps beside it, read back in bounded memory.

An interval's sessions live in one file (``day.jsonl``) and, when sweeps found sessions uploaded after it was
written, in ``day.late-1.jsonl``, ``day.late-2.jsonl``, ... beside it. Nothing here holds a file whole: counting
reads fixed-size chunks, and collecting ids keeps the ids alone, one line parsed at a time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from airflow_provider_devrev._compat import AirflowFailException

#: Bytes read at a time when counting lines: a file of any size, with lines of any length, costs this much.
CHUNK = 1 << 20


def exists(path: Any) -> bool:
    """Whether ``path`` (an ``ObjectStoragePath``) is an existing file."""
    return bool(path.exists()) and bool(path.is_file())


def count_sessions(path: Any) -> int | None:
    """
    How many sessions (lines) the JSON Lines file at ``path`` holds, or ``None`` when there is no file.

    Counts newlines in chunks of :data:`CHUNK` bytes, plus a last line without one: bounded memory whatever the
    size of the file or of one session.

    :param path: An ``ObjectStoragePath``.
    """
    if not exists(path):
        return None
    count, last = 0, b"\n"
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def session_ids(paths: Iterable[Any]) -> set[str]:
    """
    The ``session_id`` of every line of the JSON Lines files at ``paths``: the ids alone are kept.

    :param paths: ``ObjectStoragePath`` objects of existing files.
    """
    ids: set[str] = set()
    for path in paths:
        with path.open("r", encoding="utf-8") as stream:
            # readline, not iteration: Airflow 2.11's file wrapper is not iterable.
            for line in iter(stream.readline, ""):
                if line.strip():
                    ids.add(json.loads(line)["session_id"])
    return ids


def late_files(target: Any) -> list[Any]:
    """
    The sweep files beside ``target`` (``<stem>.late-<n><suffix>``), in the order of ``n``.

    :param target: The export's ``ObjectStoragePath``.
    """
    pattern = re.compile(rf"{re.escape(target.stem)}\.late-([1-9][0-9]*){re.escape(target.suffix)}")
    if not target.parent.exists():
        return []
    found = []
    for path in target.parent.iterdir():
        matched = pattern.fullmatch(path.name)
        if matched:
            found.append((int(matched.group(1)), path))
    return [path for _, path in sorted(found, key=lambda pair: pair[0])]


def next_late_file(target: Any, existing: list[Any]) -> Any:
    """The path of the next sweep file beside ``target``: one more than the highest ``n`` in ``existing``."""
    pattern = re.compile(r"\.late-([0-9]+)" + re.escape(target.suffix) + "$")
    highest = max((int(pattern.search(path.name).group(1)) for path in existing), default=0)  # type: ignore[union-attr]
    return target.with_name(f"{target.stem}.late-{highest + 1}{target.suffix}")


def without(sessions: Iterable[dict[str, Any]], ids: set[str]) -> Iterator[dict[str, Any]]:
    """``sessions`` minus those whose ``session_id`` is in ``ids``."""
    return (session for session in sessions if session.get("session_id") not in ids)


def never_fewer(sessions: Iterable[dict[str, Any]], existing: int | None, target: str) -> Iterator[dict[str, Any]]:
    """
    Yield ``sessions``; once they are all yielded, fail if there were fewer than ``existing``.

    The failure is raised inside the caller's write, before the new file is published, so the existing one
    stays as it was.

    :param existing: How many sessions the file about to be replaced holds (``None``: no file).
    :param target: The file's path, for the message.
    """
    count = 0
    for session in sessions:
        count += 1
        yield session
    if existing is not None and count < existing:
        raise AirflowFailException(
            f"this rerun found {count} sessions where {target} holds {existing}: the file was left as it is. "
            "DevRev no longer returns some of them (retention, an erasure request), and replacing the file would "
            "lose them from the export. If they must go (an erasure request), rerun with allow_shrink=True"
        )
