"""How the DevRev simulator pages a list: its cursor mode, its default order, and its cursors.

The contract leaves DevRev's cursor unspecified (opaque strings, README item 5), so the simulator can behave
like any cursor a client must survive:

- ``keyset`` (the default): the cursor remembers the whole sort key of the last session of the page,
  ``session_id`` included, so the order is total and a session added or removed between two pages shifts
  nothing. This is the kindest cursor; DevRev's is not known to be it.
- ``keyset_no_tiebreak``: the cursor remembers the sort key without the ``session_id``; sessions sharing the
  last ``created_at`` of a page with the ones on it, but not on it, are never listed.
- ``offset``: the cursor is a position in the current order; a session added before it repeats one, a session
  removed before it hides one.

``order`` is the order of a list that names no ``sort_by`` (``asc`` or ``desc`` by ``created_at``), and
``ignore_sort_by`` makes the simulator disregard ``sort_by`` altogether, as a server may.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
from dataclasses import dataclass
from typing import Any, TypeVar

CURSOR_MODES = ("keyset", "keyset_no_tiebreak", "offset")
ORDERS = ("asc", "desc")

SortSpec = tuple[tuple[str, bool], ...]  # (field, descending) in priority order; session_id breaks ties
SortKey = tuple[Any, ...]
Token = Any  # a SortKey (keyset modes) or an int offset
T = TypeVar("T")


class CursorError(ValueError):
    """A cursor that this simulator did not issue, or issued for another sort order or cursor mode."""


@dataclass(frozen=True)
class ListingStyle:
    """
    How a simulator pages lists.

    :param cursor_mode: ``keyset``, ``keyset_no_tiebreak`` or ``offset`` (see the module docstring).
    :param order: ``asc`` or ``desc``: the ``created_at`` order of a list without ``sort_by``.
    :param ignore_sort_by: disregard any ``sort_by`` a request sends (its value is not even checked).
    :raises ValueError: for an unknown mode or order.
    """

    cursor_mode: str = "keyset"
    order: str = "asc"
    ignore_sort_by: bool = False

    def __post_init__(self) -> None:
        if self.cursor_mode not in CURSOR_MODES:
            raise ValueError(f"cursor_mode must be one of {list(CURSOR_MODES)}, not {self.cursor_mode!r}")
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {list(ORDERS)}, not {self.order!r}")
        if not isinstance(self.ignore_sort_by, bool):
            raise ValueError("ignore_sort_by must be a bool")

    @property
    def default_sort(self) -> SortSpec:
        return (("created_at", self.order == "desc"),)


def select(
    candidates: list[tuple[SortKey, T]], *, cursor: Token | None, mode: str, limit: int, cursor_mode: str
) -> tuple[list[T], Token | None, Token | None]:
    """
    One page of ``candidates`` (each with its full sort key) at ``cursor``, in sort order.

    :param mode: ``after`` (the page after ``cursor``, or the first) or ``before`` (before it, or the last).
    :returns: ``(items, next_token, prev_token)``; a token is None when nothing lies beyond that side.
    """
    if cursor_mode == "offset":
        return _select_offset(candidates, cursor, mode, limit)
    tiebreak = cursor_mode == "keyset"

    def project(key: SortKey) -> SortKey:
        return key if tiebreak else key[:-1]

    if mode == "before":
        pool = candidates if cursor is None else [item for item in candidates if project(item[0]) < cursor]
        chosen = heapq.nlargest(limit + 1, pool, key=lambda item: item[0])
        more_before = len(chosen) > limit
        chosen = chosen[:limit][::-1]
        more_after = len(pool) < len(candidates)
    else:
        pool = candidates if cursor is None else [item for item in candidates if project(item[0]) > cursor]
        chosen = heapq.nsmallest(limit + 1, pool, key=lambda item: item[0])
        more_after = len(chosen) > limit
        chosen = chosen[:limit]
        more_before = len(pool) < len(candidates)
    next_token = project(chosen[-1][0]) if chosen and more_after else None
    prev_token = project(chosen[0][0]) if chosen and more_before else None
    return [item for _, item in chosen], next_token, prev_token


def _select_offset(
    candidates: list[tuple[SortKey, T]], cursor: int | None, mode: str, limit: int
) -> tuple[list[T], int | None, int | None]:
    ordered = sorted(candidates, key=lambda item: item[0])
    if mode == "before":
        end = len(ordered) if cursor is None else min(cursor, len(ordered))
        start = max(0, end - limit)
    else:
        start = 0 if cursor is None else min(cursor, len(ordered))
        end = min(start + limit, len(ordered))
    chosen = ordered[start:end]
    return [item for _, item in chosen], (end if end < len(ordered) else None), (start if start > 0 else None)


def sort_spec_text(sort: SortSpec) -> str:
    return ",".join(f"{field}:{'desc' if descending else 'asc'}" for field, descending in sort)


def encode_cursor(token: Token, sort: SortSpec, cursor_mode: str = "keyset") -> str:
    """An opaque cursor for ``token``; it carries the sort order and mode so a mismatched reuse is detected."""
    payload: dict[str, Any] = {"s": sort_spec_text(sort)}
    if cursor_mode == "offset":
        payload.update(m=cursor_mode, o=token)
    else:
        payload["k"] = list(token)
        if cursor_mode != "keyset":  # keyset cursors keep the format they always had
            payload["m"] = cursor_mode
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, sort: SortSpec, cursor_mode: str = "keyset") -> Token:
    """Inverse of :func:`encode_cursor`.

    :raises CursorError: when the cursor is malformed or was issued for another sort order or mode.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError) as exc:
        raise CursorError("cursor is not one this server issued") from exc
    if not isinstance(payload, dict) or payload.get("m", "keyset") != cursor_mode:
        raise CursorError("cursor is not one this server issued")
    if payload.get("s") != sort_spec_text(sort):
        raise CursorError("cursor was issued for a different sort_by")
    if cursor_mode == "offset":
        offset = payload.get("o")
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise CursorError("cursor is not one this server issued")
        return offset
    key = payload.get("k")
    if not isinstance(key, list):
        raise CursorError("cursor is not one this server issued")
    numbers = key if cursor_mode == "keyset_no_tiebreak" else key[:-1]
    numbers_ok = all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers)
    expected = len(sort) + (1 if cursor_mode == "keyset" else 0)
    if len(key) != expected or not numbers_ok or (cursor_mode == "keyset" and not isinstance(key[-1], str)):
        raise CursorError("cursor is not one this server issued")
    return tuple(key)
