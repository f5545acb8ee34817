"""
What to do about each outcome of a DevRev call: one policy, shared by the sync hook, the sensor and the
trigger, so that poke mode and deferrable mode cannot drift apart.

- :class:`RetryPolicy` decides, inside one hook call, which failures are retried and how long to wait
  (``Retry-After`` first, else capped exponential backoff with jitter). Both transports drive it through
  tenacity with the same arguments (:meth:`RetryPolicy.tenacity_kwargs`).
- :func:`sensor_outcome` decides, for a sensor check whose hook call has given up, whether the sensor
  keeps waiting or fails.
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_devrev.exceptions import (
    DevRevError,
    DevRevNotFoundError,
    DevRevRateLimitError,
    DevRevServerError,
)

if TYPE_CHECKING:
    from tenacity import RetryCallState

#: Statuses worth sending again: the rate limit (after its wait) and the server-side failures.
#: Everything else (400, 401, 403, 404, 413, ...) is final: repeating it only burns the rate limit.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

DEFAULT_MAX_RETRIES = 5
DEFAULT_MAX_RETRY_WAIT = 300.0
#: First backoff wait, doubled per retry, capped by ``BACKOFF_MAX`` and by ``max_retry_wait``.
BACKOFF_INITIAL = 1.0
BACKOFF_MAX = 60.0


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` may go away by itself: no answer at all, a 429, or a 5xx the contract names."""
    if isinstance(error, DevRevServerError) and error.status_code is None:
        return True  # connection refused or dropped, or a timeout: no answer at all
    return isinstance(error, DevRevError) and error.status_code in RETRYABLE_STATUSES


@dataclass(frozen=True)
class RetryPolicy:
    """
    Retries within one hook call.

    :param max_retries: Retries after the first attempt; a call makes at most ``1 + max_retries`` requests.
    :param max_retry_wait: The longest single wait accepted. A ``Retry-After`` asking for more fails the call
        at once (with the wait asked for in the message) instead of blocking a worker slot for that long.
    :param backoff_initial: First backoff wait when the server gave no ``Retry-After``.
    :param jitter: Returns a float in [0, 1); injectable so tests are deterministic.
    :param retry_rate_limited: Whether a 429 is retried within the call. ``get_sessions`` turns it off: it
        paces all its concurrent calls together on a 429, which a call retrying alone cannot do.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT
    backoff_initial: float = BACKOFF_INITIAL
    jitter: Callable[[], float] = random.random
    retry_rate_limited: bool = True

    def should_retry(self, error: BaseException) -> bool:
        """Transient and, for a 429, asking for no more than ``max_retry_wait``."""
        if not is_transient(error):
            return False
        if not self.retry_rate_limited and getattr(error, "status_code", None) == 429:
            return False
        retry_after = getattr(error, "retry_after", None)
        return retry_after is None or retry_after <= self.max_retry_wait

    def wait_seconds(self, error: BaseException | None, retry_number: int) -> float:
        """
        How long to wait before retry number ``retry_number`` (1-based).

        The server's ``Retry-After`` is a minimum, so the wait is the larger of it and the jittered backoff;
        the backoff is "equal jitter" (half fixed, half random) so that a retry never follows at once.
        Never more than ``max_retry_wait``.
        """
        ceiling = min(BACKOFF_MAX, self.max_retry_wait)
        backoff = min(ceiling, self.backoff_initial * 2.0 ** (retry_number - 1))
        wait = backoff / 2 + self.jitter() * backoff / 2
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            wait = max(wait, float(retry_after))
        return min(wait, self.max_retry_wait)

    def check_wait_acceptable(self, error: DevRevError) -> DevRevError:
        """Return ``error``, or a clearer one when DevRev asked for a wait longer than ``max_retry_wait``."""
        retry_after = error.retry_after
        if retry_after is None or retry_after <= self.max_retry_wait or not is_transient(error):
            return error
        return DevRevRateLimitError(
            f"DevRev asked to wait {retry_after:g} s before retrying, more than max_retry_wait="
            f"{self.max_retry_wait:g} s; raise max_retry_wait on the connection or hook to wait that long",
            status_code=error.status_code,
            error_type=error.error_type,
            detail=error.detail,
            retry_after=retry_after,
            reference_id=error.reference_id,
            body=error.body,
        )

    def first_retry_wait(
        self, error: BaseException, *, log: Any, what: str, deadline: float | None = None
    ) -> float | None:
        """
        The wait before retry 1 of a call whose first attempt raised ``error`` (logged as retry 1), or
        ``None`` if the error is final or the retry would start after ``deadline``.

        Transports make the first attempt without tenacity (most calls succeed, or get a final 404, at
        once, and a triggerer makes thousands of them); only a call that needs a retry builds the
        tenacity loop, with :meth:`tenacity_kwargs` ``(attempts_made=1)``.
        """
        if self.max_retries < 1 or not self.should_retry(error):
            return None
        wait = self.wait_seconds(error, 1)
        if _past(deadline, wait):
            return None
        self.log_retry(log, what, error, 1, wait)
        return wait

    def log_retry(self, log: Any, what: str, error: BaseException | None, retry_number: int, wait: float) -> None:
        """The one WARNING line per retry: request, status, DevRev type, attempt and wait; never a body."""
        from airflow_provider_devrev import metrics

        metrics.retry_waited(getattr(error, "status_code", None), wait)
        log.warning(
            "DevRev %s failed (%s); retry %d of %d in %.1f s",
            what,
            describe_failure(error),
            retry_number,
            self.max_retries,
            wait,
        )

    def tenacity_kwargs(
        self,
        *,
        sleep: Callable[[float], Any],
        log: Any,
        what: str,
        attempts_made: int = 0,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """
        Arguments for ``tenacity.Retrying`` and ``tenacity.AsyncRetrying`` alike.

        :param sleep: How to wait (``time.sleep``, ``asyncio.sleep``, or a fake in tests).
        :param log: Where the one WARNING line per retry goes (a ``logging.Logger`` or Airflow's).
        :param what: ``METHOD /path``, for that line.
        :param attempts_made: Attempts (and their waits) already made before tenacity takes over, so the
            whole call still makes at most ``1 + max_retries`` requests and numbers its retries on.
        :param deadline: Unix time after which no retry starts (a sensor's timeout): the last error is
            raised instead of waiting past it.
        """
        from tenacity import retry_if_exception, stop_after_attempt
        from tenacity.stop import stop_base

        class past_deadline(stop_base):
            def __call__(self, retry_state: RetryCallState) -> bool:
                return _past(deadline, retry_state.upcoming_sleep)

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            return self.wait_seconds(error, state.attempt_number + attempts_made)

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            wait_for = state.next_action.sleep if state.next_action else 0.0
            self.log_retry(log, what, error, state.attempt_number + attempts_made, wait_for)

        return {
            "retry": retry_if_exception(self.should_retry),
            "stop": stop_after_attempt(self.max_retries + 1 - attempts_made) | past_deadline(),
            "wait": wait,
            "sleep": sleep,
            "before_sleep": before_sleep,
            "reraise": True,
        }


def _past(deadline: float | None, wait: float) -> bool:
    """Whether a retry after ``wait`` seconds would start after ``deadline`` (Unix time; ``None``: never)."""
    return deadline is not None and time.time() + wait >= deadline


def describe_failure(error: BaseException | None) -> str:
    """
    Status and DevRev type of a failure, for one log line: never a body, header or token. A failure to reach
    DevRev adds what failed, naming the host (``no response: could not resolve the host ...``).
    """
    if not isinstance(error, DevRevError):
        return type(error).__name__ if error else "unknown"
    if could_not_reach(error) and error.detail:
        return f"no response: {error.detail}"
    status = f"status {error.status_code}" if error.status_code is not None else "no response"
    return f"{status}, {error.error_type}" if error.error_type else status


#: ``error_type`` of the failures that mean DevRev was never reached: the network or a timeout.
UNREACHED_TYPES = frozenset({"connection_error", "timeout"})


def could_not_reach(error: BaseException) -> bool:
    """Whether ``error`` means no answer came from DevRev at all (network failure, timeout, proxy down)."""
    return isinstance(error, DevRevServerError) and error.status_code is None and error.error_type in UNREACHED_TYPES


#: How many of a sensor's last checks must all have failed to reach DevRev for its timeout to blame the
#: network rather than the session.
UNREACHED_CHECKS = 3


class CheckHistory:
    """
    The last few checks of one wait, for the message of its timeout: "did not appear" blames the session,
    which is wrong when DevRev was never reached. Shared by the sensor and the trigger, so the two word it
    the same.
    """

    def __init__(self) -> None:
        self.checks = 0
        self.unreached_in_a_row = 0
        self.last_failure: DevRevError | None = None

    def note(self, error: DevRevError | None) -> None:
        """Record one check that did not find the session: its error (``None`` or a 404: not uploaded yet)."""
        self.checks += 1
        self.last_failure = error
        self.unreached_in_a_row = self.unreached_in_a_row + 1 if error and could_not_reach(error) else 0

    def never_reached(self) -> bool:
        """Whether the last :data:`UNREACHED_CHECKS` checks (all, if fewer) got no answer from DevRev."""
        return bool(self.unreached_in_a_row) and self.unreached_in_a_row >= min(UNREACHED_CHECKS, self.checks)

    def timeout_message(self, session_id: str) -> str:
        """The message of the wait's timeout, blaming the network when the last checks all failed to reach it."""
        if self.never_reached():
            return (
                f"waiting for session {session_id!r} timed out without reaching DevRev: the last "
                f"{self.unreached_in_a_row} check(s) got no answer; last error: {self.last_failure}"
            )
        return f"session {session_id!r} did not appear before the sensor's timeout"


class SensorOutcome(enum.Enum):
    """What a sensor does after one check whose hook call raised."""

    NOT_YET = "not_yet"  # 404: the session is not uploaded yet
    KEEP_WAITING = "keep_waiting"  # transient and the hook's retries are spent: the sensor timeout bounds it
    FAIL = "fail"  # waiting cannot fix it (400, 401, 403, 413, an unexpected body)


def sensor_outcome(error: DevRevError) -> SensorOutcome:
    """Classify a failed check, identically for poke, reschedule and deferrable modes."""
    if isinstance(error, DevRevNotFoundError):
        return SensorOutcome.NOT_YET
    if is_transient(error) or (error.status_code or 0) >= 500:
        # Any 5xx is the server's problem, not the request's: the sensor's timeout bounds the wait.
        return SensorOutcome.KEEP_WAITING
    return SensorOutcome.FAIL


def next_check_delay(interval: float, error: DevRevError | None) -> float:
    """
    Seconds until a waiting sensor or trigger checks again: its interval, or longer if DevRev's last
    answer asked for a longer wait (``Retry-After`` beyond what the hook would wait out itself).
    """
    retry_after = error.retry_after if error is not None else None
    return max(interval, retry_after or 0.0)


def wait_within_deadline(interval: float, deadline: float | None, now: float) -> float:
    """
    ``interval``, cut so that a sensor's or trigger's last check comes at its ``deadline`` rather than up to an
    interval after it; never below 1 s, which would spin on a clock that lands on the deadline exactly.
    """
    return interval if deadline is None else min(interval, max(1.0, deadline - now))


def sensor_backoff_interval(
    poke_interval: float,
    check_number: int,
    *,
    max_wait: float | None = None,
    jitter: Callable[[], float] = random.random,
) -> float:
    """
    The wait after check number ``check_number`` of a sensor with ``exponential_backoff``, as Airflow's
    ``BaseSensorOperator`` computes it in poke mode: at least ``poke_interval * 2 ** (n - 2)`` (and 1 s),
    plus up to as much again of jitter, capped by ``max_wait``. The trigger uses it so that deferrable
    mode does not drop the option.
    """
    min_backoff = max(int(poke_interval * 2.0 ** (check_number - 2)), 1)
    interval = min_backoff + int(jitter() * min_backoff)
    return interval if max_wait is None else min(max_wait, interval)
