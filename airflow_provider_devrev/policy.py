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

    def first_retry_wait(self, error: BaseException, *, log: Any, what: str) -> float | None:
        """
        The wait before retry 1 of a call whose first attempt raised ``error`` (logged as retry 1), or
        ``None`` if the error is final.

        Transports make the first attempt without tenacity (most calls succeed, or get a final 404, at
        once, and a triggerer makes thousands of them); only a call that needs a retry builds the
        tenacity loop, with :meth:`tenacity_kwargs` ``(attempts_made=1)``.
        """
        if self.max_retries < 1 or not self.should_retry(error):
            return None
        wait = self.wait_seconds(error, 1)
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
        self, *, sleep: Callable[[float], Any], log: Any, what: str, attempts_made: int = 0
    ) -> dict[str, Any]:
        """
        Arguments for ``tenacity.Retrying`` and ``tenacity.AsyncRetrying`` alike.

        :param sleep: How to wait (``time.sleep``, ``asyncio.sleep``, or a fake in tests).
        :param log: Where the one WARNING line per retry goes (a ``logging.Logger`` or Airflow's).
        :param what: ``METHOD /path``, for that line.
        :param attempts_made: Attempts (and their waits) already made before tenacity takes over, so the
            whole call still makes at most ``1 + max_retries`` requests and numbers its retries on.
        """
        from tenacity import retry_if_exception, stop_after_attempt

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            return self.wait_seconds(error, state.attempt_number + attempts_made)

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            wait_for = state.next_action.sleep if state.next_action else 0.0
            self.log_retry(log, what, error, state.attempt_number + attempts_made, wait_for)

        return {
            "retry": retry_if_exception(self.should_retry),
            "stop": stop_after_attempt(self.max_retries + 1 - attempts_made),
            "wait": wait,
            "sleep": sleep,
            "before_sleep": before_sleep,
            "reraise": True,
        }


def describe_failure(error: BaseException | None) -> str:
    """Status and DevRev type of a failure, for one log line: never a body, header or token."""
    if not isinstance(error, DevRevError):
        return type(error).__name__ if error else "unknown"
    status = f"status {error.status_code}" if error.status_code is not None else "no response"
    return f"{status}, {error.error_type}" if error.error_type else status


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
