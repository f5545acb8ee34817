"""Scripted faults of the DevRev simulator.

A fault replaces the normal handling of the next ``times`` requests that match its filters, before the
token is even checked, because that is where the real failures come from: a gateway, a proxy or an
overloaded backend answers without looking at who asks. Faults are consumed in the order they were added.

Kinds and their parameters (defaults in brackets):

- ``rate_limit`` (``retry_after`` [1], ``header`` ["seconds"; or "http-date", or None for no header],
  ``body_retry_after`` [``int(retry_after)``; None leaves the field out]): 429 ``too_many_requests``.
  Sub-second ``retry_after`` values are sent as decimals ("0.25") so tests can keep waits short.
- ``server_error`` (``status`` [500], ``reference_id`` [random]): 500 ``internal_error``, 503
  ``service_unavailable``, or for 502/504 an HTML page as a proxy would send (outside the contract).
- ``status`` (``status``, ``body``, ``headers`` [None]): that status with that JSON body.
- ``slow`` (``delay``): the normal answer after ``delay`` seconds; a stop() ends the wait and drops it.
- ``drop``: the connection is closed without a response.
- ``non_json`` (``status`` [200], ``body`` [an HTML page], ``content_type`` ["text/html"]).
- ``truncated_json`` (``status`` [200]): the normal JSON body cut in half, with a Content-Length that
  matches the cut body, so the HTTP response is complete but its JSON is not.
- ``cut_body`` (``after_bytes`` [half the body; 64 KiB of a streamed one]): the normal answer, but the
  connection closes after that many bytes of its body, before the declared length (or the final chunk).
- ``revoked``: 401 ``token_revoked``.

``slow``, ``truncated_json`` and ``cut_body`` run the normal handling (so a lookup they wrap counts towards
``appear_after_requests``); the others replace it.
"""

from __future__ import annotations

import email.utils
import json
import math
import secrets
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from airflow_provider_devrev.testing.protocol import Reply, json_reply

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Mapping

_PARAMS: dict[str, frozenset[str]] = {
    "rate_limit": frozenset({"retry_after", "header", "body_retry_after"}),
    "server_error": frozenset({"status", "reference_id"}),
    "status": frozenset({"status", "body", "headers"}),
    "slow": frozenset({"delay"}),
    "drop": frozenset(),
    "non_json": frozenset({"status", "body", "content_type"}),
    "truncated_json": frozenset({"status"}),
    "cut_body": frozenset({"after_bytes"}),
    "revoked": frozenset(),
}
FAULT_KINDS = frozenset(_PARAMS)
#: Each kind's parameters (read-only): what ``--fault`` of ``devrev-simulator`` accepts and lists in its help.
FAULT_PARAMS: Mapping[str, frozenset[str]] = MappingProxyType(_PARAMS)

_DEFAULT_HTML = (
    "<html><head><title>Service temporarily unavailable</title></head>"
    "<body><h1>We'll be right back</h1><p>Scheduled maintenance in progress.</p></body></html>"
)
_PROXY_PAGES = {502: "Bad Gateway", 504: "Gateway Time-out"}


@dataclass
class Fault:
    """A scripted fault; ``remaining`` is None for "until cleared"."""

    kind: str
    params: dict[str, Any]
    path: str | None = None
    session_id: str | None = None
    remaining: int | None = 1

    def matches(self, path: str, session_id: str | None) -> bool:
        return self.path in (None, path) and (self.session_id is None or self.session_id == session_id)


def _status(params: dict[str, Any], default: int | None, allowed: tuple[int, ...] | None = None) -> int:
    status = params.get("status", default)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise ValueError(f"status must be an int in 100..599, not {status!r}")
    if allowed is not None and status not in allowed:
        raise ValueError(f"status must be one of {allowed}, not {status}")
    return status


#: The longest wait a fault may ask for (about 31 years): far beyond any test, and short enough that a
#: ``Retry-After`` date and a thread's wait can still be computed from it.
MAX_SECONDS = 10**9


def _is_seconds(value: Any) -> bool:
    """Whether a fault can wait ``value`` seconds: a number, not a bool, not NaN, in ``0..MAX_SECONDS``."""
    # JSON, and so --fault, takes NaN and Infinity; 1e309 overflows to Infinity.
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= MAX_SECONDS


def make_fault(
    kind: str, *, times: int | None, path: str | None, session_id: str | None, params: dict[str, Any]
) -> Fault:
    """Validate a fault description up front, so a typo fails in the test that wrote it, not mid-request.

    :param kind: one of :data:`FAULT_KINDS`.
    :param times: how many matching requests it affects; None for every one until cleared.
    :param path: only requests to this path (leading ``/`` optional); None for any.
    :param session_id: only requests naming this session id; None for any.
    :param params: the kind's parameters (see the module docstring).
    :raises ValueError: for an unknown kind or an invalid value.
    :raises TypeError: for a parameter the kind does not take.
    """
    if kind not in _PARAMS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(_PARAMS)}")
    unknown = set(params) - _PARAMS[kind]
    if unknown:
        raise TypeError(f"fault {kind!r} takes no parameter(s) {sorted(unknown)}")
    if times is not None and (not isinstance(times, int) or times < 1):
        raise ValueError("times must be a positive int or None")
    if kind == "rate_limit":
        retry_after = params.setdefault("retry_after", 1)
        if not _is_seconds(retry_after):
            raise ValueError(f"retry_after must be a number >= 0 and <= {MAX_SECONDS:,}, not {retry_after!r}")
        if params.setdefault("header", "seconds") not in ("seconds", "http-date", None):
            raise ValueError("header must be 'seconds', 'http-date' or None")
        params.setdefault("body_retry_after", int(retry_after))
    elif kind == "server_error":
        _status(params, 500, (500, 502, 503, 504))
    elif kind == "status":
        _status(params, None)
        json.dumps(params.get("body"))  # fail now on a body that cannot be sent
        if not isinstance(params.get("headers") or {}, dict):
            raise ValueError(f"headers must be a JSON object of names to values, not {params['headers']!r}")
    elif kind == "slow":
        delay = params.get("delay")
        if not _is_seconds(delay):
            raise ValueError(f"slow needs delay=<seconds >= 0 and <= {MAX_SECONDS:,}>, not {delay!r}")
    elif kind == "cut_body":
        after = params.setdefault("after_bytes", None)
        if after is not None and (not isinstance(after, int) or isinstance(after, bool) or after < 0):
            raise ValueError("after_bytes must be an int >= 0")
    elif kind in ("non_json", "truncated_json"):
        params["status"] = _status(params, 200)
        if kind == "non_json":
            params.setdefault("body", _DEFAULT_HTML)
            params.setdefault("content_type", "text/html")
            if not isinstance(params["body"], str) or not isinstance(params["content_type"], str):
                raise ValueError("non_json takes a str body and a str content_type")
    if path is not None and not path.startswith("/"):
        path = "/" + path
    return Fault(kind=kind, params=params, path=path, session_id=session_id, remaining=times)


class FaultQueue:
    """Faults in the order added; thread-safe on its own, since request threads consume them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def take(self, path: str, session_id: str | None) -> Fault | None:
        """Consume one use of the first fault matching this request."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(path, session_id):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining == 0:
                            self._faults.remove(fault)
                    return fault
        return None


def format_seconds(seconds: float) -> str:
    """``Retry-After`` delay text: an integer when whole; a decimal otherwise so tests can use short waits."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:.3f}".rstrip("0").rstrip(".")


def too_many_requests(retry_after: float, *, header: str | None, body_retry_after: int | None) -> Reply:
    """The contract's 429.

    :param retry_after: seconds to wait.
    :param header: ``seconds``, ``http-date`` or None (no ``Retry-After`` header).
    :param body_retry_after: the body's ``retry_after``; None leaves the field out.
    """
    body: dict[str, Any] = {
        "type": "too_many_requests",
        "message": f"Rate limit exceeded; retry after {format_seconds(retry_after)} seconds.",
    }
    if body_retry_after is not None:
        body["retry_after"] = body_retry_after
    headers: tuple[tuple[str, str], ...] = ()
    if header == "seconds":
        headers = (("Retry-After", format_seconds(retry_after)),)
    elif header == "http-date":
        # HTTP dates have whole-second resolution: round up so a client never retries too early.
        when = datetime.fromtimestamp(math.ceil(time.time() + retry_after), UTC)
        headers = (("Retry-After", email.utils.format_datetime(when, usegmt=True)),)
    return json_reply(429, body, headers)


def _text(status: int, text: str, content_type: str = "text/html") -> Reply:
    return Reply(status, text.encode("utf-8"), content_type)


def fault_reply(fault: Fault, *, normal: Callable[[], Reply], stop: threading.Event) -> Reply:
    """What to send for a request hit by ``fault``.

    :param fault: the consumed fault.
    :param normal: produces the normal (fault-free) reply; called by ``slow`` and ``truncated_json``.
    :param stop: set when the server stops; a ``slow`` wait ends early and drops the connection then.
    """
    params = fault.params
    if fault.kind == "rate_limit":
        return too_many_requests(
            params["retry_after"], header=params["header"], body_retry_after=params["body_retry_after"]
        )
    if fault.kind == "server_error":
        status = params.get("status", 500)
        if status == 500:
            reference_id = params.get("reference_id") or f"ref-{secrets.token_hex(8)}"
            body = {"type": "internal_error", "message": "Internal error.", "reference_id": reference_id}
            return json_reply(500, body)
        if status == 503:
            return json_reply(503, {"type": "service_unavailable", "message": "Service unavailable."})
        title = f"{status} {_PROXY_PAGES[status]}"
        page = f"<html><head><title>{title}</title></head><body><center><h1>{title}</h1></center></body></html>"
        return _text(status, page)
    if fault.kind == "status":
        headers = tuple((str(k), str(v)) for k, v in (params.get("headers") or {}).items())
        return json_reply(params["status"], params.get("body"), headers)
    if fault.kind == "slow":
        if stop.wait(params["delay"]):
            return Reply(0, drop=True)
        return normal()
    if fault.kind == "drop":
        return Reply(0, drop=True)
    if fault.kind == "non_json":
        return _text(params["status"], params["body"], params["content_type"])
    if fault.kind == "truncated_json":
        full = normal()
        whole = b"".join(full.chunks) if full.chunks is not None else full.body
        return Reply(params["status"], whole[: len(whole) // 2], full.content_type, full.headers)
    if fault.kind == "cut_body":
        full = normal()
        after = params["after_bytes"]
        if after is None:
            after = len(full.body) // 2 if full.chunks is None else 1 << 16
        return replace(full, cut_after=after)
    return json_reply(401, {"type": "token_revoked", "message": "The token has been revoked."})


class RateLimiter:
    """The optional ``rate_limit=(requests, per_seconds)`` of a simulator: fixed windows of its clock, one
    series per token, as DevRev limits each user across all its APIs: every request made with a token counts
    towards that token's window, whatever session or connection it is for, and another token has its own.

    :param limit: requests allowed per window.
    :param per: window length in clock seconds.
    :param now: clock value at which the first window of every token starts (a token's later windows start
        at its first request at least ``per`` after its current one started).
    """

    def __init__(self, limit: int, per: float, *, now: float) -> None:
        if limit < 1 or per <= 0:
            raise ValueError("rate_limit must be (requests >= 1, per_seconds > 0)")
        self.limit, self.per, self.start = limit, per, now
        #: Per token key: [window start, requests counted in it].
        self.windows: dict[Hashable, list[float]] = {}

    def check(self, now: float, token: Hashable = None) -> tuple[Reply | None, tuple[tuple[str, str], ...]]:
        """Count a request made with ``token`` (any key naming it, never needing the token itself):
        ``(429 reply or None, X-Ratelimit headers for an allowed reply)``."""
        window = self.windows.setdefault(token, [self.start, 0])
        if now - window[0] >= self.per:
            window[0], window[1] = now, 0
        window[1] += 1
        count = int(window[1])
        # Rounded up to the millisecond so a client that waits exactly this long lands in the next window.
        wait = max(math.ceil((window[0] + self.per - now) * 1000) / 1000, 0.001)
        headers = (
            ("X-Ratelimit-Limit", str(self.limit)),
            ("X-Ratelimit-Remaining", str(max(self.limit - count, 0))),
            ("X-Ratelimit-Reset", str(math.ceil(time.time() + wait))),
        )
        if count <= self.limit:
            return None, headers
        reply = too_many_requests(wait, header="seconds", body_retry_after=math.ceil(wait))
        return Reply(reply.status, reply.body, reply.content_type, reply.headers + headers), ()
