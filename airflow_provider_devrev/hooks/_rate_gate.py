"""
One rate limit shared by every request on a connection in this process.

DevRev limits requests per user across all APIs, in fixed windows, and says so on its answers: a 429 with
``Retry-After``, and ``X-Ratelimit-Limit``, ``X-Ratelimit-Remaining`` and ``X-Ratelimit-Reset`` (epoch seconds)
on the others. Without sharing, a thousand deferred waits on one triggerer, polling with one token, each learn of
a spent window on their own, one 429 apiece, and keep spending what is left. A :class:`RateGate` is what every
request on the same connection (host and token) in this process learns from and asks before it is sent:

- a 429 pauses every request for its ``Retry-After`` (or, without one, :data:`FALLBACK_PAUSE`);
- ``X-Ratelimit-Remaining: 0`` pauses them until ``X-Ratelimit-Reset``, before any 429 is sent;
- neither pauses them longer than :data:`MAX_PAUSE` (a reset further ahead is not believed);
- otherwise at most ``remaining`` requests may be in flight, so that a backlog released when a window opens
  cannot overrun it: what the server said was left, less what is on the wire and not yet counted back.

Both transports use it step for step alike: :meth:`RateGate.admit` before each attempt (it returns the wait, and
the caller sleeps with its own sleep: ``time.sleep``, ``asyncio.sleep``, a bulk fetch's interruptible wait, or a
test's fake), :meth:`RateGate.observe` with every answer's status and headers, :meth:`RateGate.release` after
each admitted attempt, whatever its end. No wait passes the call's deadline or its ``max_retry_wait``: such a
request is not sent, and fails at once as a 429 would (:func:`paused_error`), which the retry policy and the
sensors already know how to treat. Each call waits out a given pause once, so a fake sleep never spins.

State is guarded by a :class:`threading.Lock` held only for a few comparisons, never across a wait, and holds
no asyncio object: the gate is shared by ``get_sessions``'s threads and by every trigger of any event loop.
Gates are keyed by the base URL and a hash of the token, never the token itself.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from airflow_provider_devrev.exceptions import DevRevRateLimitError

#: Whether requests consult the gates at all. Only the benchmark turns it off, to measure the old behaviour.
ENABLED = True
#: The pause after a 429 that names no wait: the retry policy's first backoff.
FALLBACK_PAUSE = 1.0
#: How long a window that has just opened is assumed to hold ``X-Ratelimit-Limit`` requests before the server
#: has said more of it: a backlog released at the reset sends that many, then waits at most this long for word.
NEW_WINDOW_GRACE = 1.0
#: How long past a window's reset the gate keeps counting the requests it sent into the window it assumed, while
#: they are on the wire and none has answered: a budget granted afresh each grace would overrun the window.
MAX_GUESS = 10.0
#: Until the connection's first answer, at most this many requests are on the wire; the others wait at most
#: :data:`FIRST_ANSWER_WAIT`, once: a thousand waits starting together would otherwise all be sent before the
#: first word of the limit. A burst this small (a bulk fetch's workers) goes at once.
FIRST_ANSWER_BURST = 16
FIRST_ANSWER_WAIT = 0.05
#: The longest pause one answer can impose on the other requests: twelve of DevRev's five-minute windows. A
#: ``X-Ratelimit-Reset`` further ahead is no window's end (a gateway's milliseconds, or garbage) and is not
#: believed; a longer ``Retry-After`` pauses the others this long, then one of them asks the server again. Past
#: it, nothing would be sent again in this process to learn otherwise.
MAX_PAUSE = 3600.0

log = logging.getLogger(__name__)
#: The gates' clock, Unix time; a test that fakes a trigger's clock fakes this one with it.
now: Callable[[], float] = time.time

_GO = (0.0, 0)


class RateGate:
    """
    What the server last said about one connection's rate limit, and the pause it implies.

    :param name: How log lines name the connection: its base URL (never the token).
    :param clock: Unix time (``X-Ratelimit-Reset`` and a call's deadline are Unix times); the module's
        :data:`now` when left out.
    """

    __slots__ = (
        "_clock",
        "_lock",
        "guessed_at",
        "heard",
        "in_flight",
        "limit",
        "name",
        "pause_id",
        "paused_until",
        "remaining",
        "reset_at",
        "sent",
    )

    def __init__(self, name: str, *, clock: Callable[[], float] | None = None) -> None:
        self.name = name
        # The module's clock as it is when the gate is made (a test patches it first): read at every poll, so
        # not through a function of ours that would read the module's each time.
        self._clock = clock or now
        self._lock = threading.Lock()
        self.paused_until = 0.0
        #: Grows with every pause started or lengthened, so a call knows which pause it has waited out.
        self.pause_id = 0
        self.in_flight = 0
        #: Whether any answer has come back yet.
        self.heard = False
        #: When the window now counted was assumed, for want of the server's word on it (``None``: it spoke).
        self.guessed_at: float | None = None
        #: Admitted since the current window began: a request still hung from an earlier one does not count.
        self.sent = 0
        self.limit: int | None = None
        #: What the server said is left of the window ending at ``reset_at`` (both ``None``: no word).
        self.remaining: int | None = None
        self.reset_at: float | None = None

    def __repr__(self) -> str:
        return f"RateGate({self.name!r}, paused_until={self.paused_until}, remaining={self.remaining})"

    def admit(self, waited: int, max_wait: float, deadline: float | None) -> tuple[float, int]:
        """
        Let one attempt start, or say how long it must wait first.

        :param waited: The ``pause_id`` this call last waited out (``-1`` before any): it is not waited twice.
        :param max_wait: The connection's ``max_retry_wait``: no longer single wait.
        :param deadline: Unix time after which the call may not wait (a sensor's timeout); ``None``: none.
        :return: ``(0.0, 0)`` when admitted (then :meth:`release` must follow); else ``(seconds, pause_id)``:
            sleep that long, then ask again passing that ``pause_id``.
        :raises DevRevRateLimitError: the wait would pass ``max_wait`` or ``deadline``; nothing was sent.
        """
        with self._lock:
            now = self._clock()
            if self.paused_until > now and self.pause_id != waited:
                return self._wait(self.paused_until - now, max_wait, deadline)
            if self.reset_at is not None and now >= self.reset_at:
                guessed_at = self.guessed_at
                if guessed_at is not None and self.in_flight and now < guessed_at + MAX_GUESS:
                    # No word yet of the window assumed, and what was sent into it is still on the wire.
                    self.reset_at = now + NEW_WINDOW_GRACE
                else:
                    # The window the server described is over: assume the next one full, if its size is
                    # known, until the first answers say more of it.
                    self.remaining, self.sent, self.guessed_at = self.limit, 0, now
                    self.reset_at = None if self.limit is None else now + NEW_WINDOW_GRACE
            if not self.heard and self.in_flight >= FIRST_ANSWER_BURST and waited == -1:
                # Only a call that has waited nothing yet waits for the first answer, and only once.
                if self.paused_until <= now:
                    self._pause_until(now + FIRST_ANSWER_WAIT)
                return self._wait(self.paused_until - now, max_wait, deadline)
            # What is left, less what is on the wire and perhaps not yet counted by the server.
            if (
                self.reset_at is not None
                and self.remaining is not None
                and self.remaining <= min(self.in_flight, self.sent)
            ):
                if self.reset_at > self.paused_until:
                    self.paused_until = self.reset_at
                    self.pause_id += 1
                if self.pause_id != waited:
                    return self._wait(self.paused_until - now, max_wait, deadline)
            self.in_flight += 1
            self.sent += 1
            return _GO

    def _wait(self, seconds: float, max_wait: float, deadline: float | None) -> tuple[float, int]:
        if seconds > max_wait or (deadline is not None and self._clock() + seconds >= deadline):
            raise paused_error(self.name, seconds)
        return seconds, self.pause_id

    def release(self) -> None:
        """An admitted attempt ended, answered or not."""
        with self._lock:
            self.in_flight -= 1

    def observe(self, status: int, headers: Mapping[str, str], retry_after: float | None) -> None:
        """
        Learn from one answer: its ``X-Ratelimit-*`` headers, and a 429's wait.

        :param retry_after: The wait a 429 asked for (header or body), already parsed; ``None``: none given.
        """
        self.heard = True
        remaining_text = headers.get("X-Ratelimit-Remaining")
        if remaining_text is None and status != 429:
            return  # the common case: no word on the limit
        remaining, reset, limit = _count(remaining_text), _number(headers.get("X-Ratelimit-Reset")), None
        if remaining is not None:
            limit = _count(headers.get("X-Ratelimit-Limit")) or None  # a limit of 0 would pause for ever
        with self._lock:
            now = self._clock()
            started = 0.0
            if limit is not None:
                self.limit = limit
            if remaining is not None and reset is not None and now < reset <= now + MAX_PAUSE:
                if self.reset_at is None or reset > self.reset_at or self.guessed_at is not None:
                    # A newer window, the first word, or word of a window the gate only assumed.
                    self.remaining, self.reset_at = remaining, reset
                    self.guessed_at = None
                elif reset == self.reset_at and self.remaining is not None:
                    self.remaining = min(self.remaining, remaining)
                # An answer about an older window says nothing about this one.
                if remaining == 0:
                    started = self._pause_until(reset)
            if status == 429:
                wait = FALLBACK_PAUSE if retry_after is None else retry_after
                started = max(started, self._pause_until(now + min(wait, MAX_PAUSE)))
        if started:
            log.warning(
                "DevRev rate limit reached at %s: every request with this connection in this process pauses %.1f s",
                self.name,
                started,
            )

    def _pause_until(self, until: float) -> float:
        """Pause until ``until`` unless already paused as long; the pause's length if it grew, else 0."""
        if until <= self.paused_until:
            return 0.0
        self.paused_until = until
        self.pause_id += 1
        return until - self._clock()


def paused_error(name: str, seconds: float) -> DevRevRateLimitError:
    """
    The error of a request the gate would not send: a 429 in all but name, with the pause left as its wait,
    so the retry policy, the sensor and the trigger treat it as they treat DevRev's own.
    """
    return DevRevRateLimitError(
        f"DevRev's rate limit for this connection at {name} is spent for {seconds:.1f} s more; the request was "
        "not sent (the wait would pass the call's deadline or max_retry_wait)",
        status_code=429,
        error_type="too_many_requests",
        retry_after=math.ceil(seconds * 1000) / 1000,
    )


_GATES: dict[tuple[str, str], RateGate] = {}
_GATES_LOCK = threading.Lock()


def gate_for(settings: Any) -> RateGate | None:
    """
    The gate of ``settings``'s connection (base URL and token), shared by every request in this process;
    ``None`` when gates are off. Kept on the settings object, as the async transport keeps its options: a
    triggerer asks at every poll.
    """
    gate: RateGate | None = settings.__dict__.get("_rate_gate")
    if gate is None and ENABLED:
        key = (settings.base_url, token_digest(settings.token))
        with _GATES_LOCK:
            gate = _GATES.get(key)
            if gate is None:
                gate = _GATES[key] = RateGate(settings.base_url)
        object.__setattr__(settings, "_rate_gate", gate)
    return gate


def send_gated(
    gate: RateGate | None,
    send: Callable[[], Any],
    waited: int,
    max_wait: float,
    deadline: float | None,
    sleep: Callable[[float], Any],
) -> Any:
    """
    One attempt of the sync transport: admitted by ``gate`` (its pauses waited out with ``sleep``), then
    ``send()``, then released. The async transport does the same, inline in its hot path.
    """
    if gate is None:
        return send()
    wait, pause = gate.admit(waited, max_wait, deadline)
    while wait:
        sleep(wait)
        wait, pause = gate.admit(pause, max_wait, deadline)
    try:
        return send()
    finally:
        gate.release()


def observe(settings: Any, status: int, headers: Mapping[str, str], retry_after: float | None) -> None:
    """:meth:`RateGate.observe` on the gate of ``settings``, if gates are on."""
    gate = gate_for(settings)
    if gate is not None:
        gate.observe(status, headers, retry_after)


def pause_id(gate: RateGate | None, error: BaseException | None, waited: int) -> int:
    """
    The pause a call's next attempt need not wait: after a 429, the gate's current one, which the call's own
    retry wait (never shorter than the Retry-After) covers; after anything else, what it had waited already.
    """
    if gate is None or getattr(error, "status_code", None) != 429:
        return waited
    return gate.pause_id


def token_digest(token: str) -> str:
    """What the gates are keyed by: a SHA-256 of the token, so no structure of this module holds the token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def clear_caches() -> None:
    """
    Forget every gate, and so every pause (between tests: see ``testing/caches.py``); a settings object that
    already holds one keeps it.
    """
    with _GATES_LOCK:
        _GATES.clear()


def _count(text: str | None) -> int | None:
    try:
        value = int(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and value >= 0 else None


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None
