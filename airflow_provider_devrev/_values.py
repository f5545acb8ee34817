"""
Single values, checked (or coerced from the strings a URI connection holds) and refused naming them.

Below every module that takes such a value: the connection and its network settings coerce the same extras,
and the hook and the operators check the same ``max_concurrency``, without importing one another for it.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_devrev.exceptions import DevRevInvalidInputError

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})


def coerce_seconds(name: str, value: Any, conn_id: str | None = None) -> float:
    """A positive, finite number of seconds, from a number or a numeric string."""
    try:
        seconds = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError):
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise DevRevInvalidInputError(extra_label(name, conn_id), value, "must be a number of seconds > 0")
    return seconds


def coerce_count(name: str, value: Any, conn_id: str | None = None) -> int:
    """A whole number >= 0, from an int or a numeric string."""
    if isinstance(value, bool):
        count = -1
    elif isinstance(value, int):
        count = value
    elif isinstance(value, str) and value.strip().isdigit():
        count = int(value.strip())
    else:
        count = -1
    if count < 0:
        raise DevRevInvalidInputError(extra_label(name, conn_id), value, "must be a whole number >= 0")
    return count


def coerce_bool(name: str, value: Any, conn_id: str | None = None) -> bool:
    """A boolean, from a bool or the usual strings (``true``/``false``, ``1``/``0``, ...)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise DevRevInvalidInputError(extra_label(name, conn_id), value, "must be true or false")


def extra_label(name: str, conn_id: str | None) -> str:
    """How an error names a value: ``extra <name> of connection <id>`` when it came from a connection."""
    return f"extra {name} of connection {conn_id!r}" if conn_id else name


def validate_max_concurrency(max_concurrency: Any) -> int:
    """``max_concurrency`` of a bulk fetch: an int from 1 to 64, checked before any request."""
    if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or not 1 <= max_concurrency <= 64:
        raise DevRevInvalidInputError("max_concurrency", max_concurrency, "must be an int from 1 to 64")
    return max_concurrency
