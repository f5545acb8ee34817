"""
Fetching many sessions at once: bounded concurrency that slows down together when DevRev says 429.

Each worker thread makes ordinary hook calls (same timeouts, same retries of 5xx and connection errors),
except that a 429 is not retried inside the call: it is handed to :class:`AdaptiveLimit`, which pauses every
worker until the ``Retry-After`` has passed and halves how many requests may be in flight, then grows back
by one per round of successes. Independent retries would each wait out their own ``Retry-After`` and return
together, all at once, into the same spent window.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, Protocol

from airflow_provider_devrev import metrics
from airflow_provider_devrev._values import validate_max_concurrency
from airflow_provider_devrev.connection import ConnectionSettings
from airflow_provider_devrev.contract import ApiRequest, get_session_request
from airflow_provider_devrev.exceptions import DevRevError, DevRevInvalidInputError, DevRevNotFoundError

#: 429s in a row after which one session's fetch fails: with every wait at least DevRev's Retry-After, this
#: only ends a fetch that DevRev refuses for many minutes.
MAX_RATE_LIMITED_ATTEMPTS = 20


class BulkHook(Protocol):
    """
    What a bulk fetch uses of :class:`~airflow_provider_devrev.hooks.devrev.DevRevHook`: typed by its use, so
    that this module, which the hook imports, does not import the hook back.
    """

    _sleep: Callable[[float], Any]

    @property
    def log(self) -> Any: ...

    @property
    def settings(self) -> ConnectionSettings: ...

    def call(self, request: ApiRequest, *, retry: bool = ...) -> dict[str, Any]: ...

    def worker_copy(
        self, *, retry_rate_limited: bool = ..., sleep: Callable[[float], Any] | None = ...
    ) -> BulkHook: ...

    def close(self) -> None: ...


class AdaptiveLimit:
    """
    How many requests may be in flight: at most ``ceiling``; halved, and paused for the server's wait, on a
    429; one more after each round of successes (additive increase, multiplicative decrease).

    :param ceiling: The caller's ``max_concurrency``; never exceeded.
    :param clock: Monotonic seconds (tests pass a fake).
    """

    def __init__(self, ceiling: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ceiling = ceiling
        self.limit = ceiling
        self.in_flight = 0
        self.paused_until = 0.0
        self._clock = clock
        self._successes = 0
        self._cond = threading.Condition()
        self.stopped = False

    def stop(self) -> None:
        """The batch has failed or been interrupted: every waiting and later :meth:`acquire` raises."""
        with self._cond:
            self.stopped = True
            self._cond.notify_all()

    def wait_unless_stopped(self, seconds: float) -> None:
        """
        Wait ``seconds``, or less if the batch stops meanwhile.

        :raises BatchStopped: the batch was stopped before or during the wait.
        """
        with self._cond:
            if self._cond.wait_for(lambda: self.stopped, timeout=seconds):
                raise BatchStopped

    def acquire(self) -> None:
        """
        Block until a request may start.

        :raises BatchStopped: the batch was stopped (another request failed, or the task was interrupted).
        """
        with self._cond:
            while True:
                if self.stopped:
                    raise BatchStopped
                pause = self.paused_until - self._clock()
                if pause <= 0 and self.in_flight < self.limit:
                    self.in_flight += 1
                    if self.in_flight < self.limit:
                        # Slots are still free (a pause just ended, or the limit grew): pass the wake-up on.
                        self._cond.notify()
                    return
                self._cond.wait(timeout=pause if pause > 0 else None)

    def release(self, *, rate_limited_for: float | None = None) -> None:
        """
        A request ended; ``rate_limited_for`` is the wait DevRev asked for when it answered 429.

        :param rate_limited_for: Seconds to pause every worker, or ``None`` after any other outcome.
        """
        with self._cond:
            self.in_flight -= 1
            freed = 1
            if rate_limited_for is not None:
                now = self._clock()
                # Every request in flight when a window runs out gets its 429: that is one signal, not many,
                # so the limit is halved once per pause, not once per 429 (32 would otherwise fall to 1).
                if now >= self.paused_until:
                    self.limit = max(1, self.limit // 2)
                self.paused_until = max(self.paused_until, now + rate_limited_for)
                self._successes = 0
            else:
                self._successes += 1
                if self._successes >= self.limit and self.limit < self.ceiling:
                    self.limit += 1
                    self._successes = 0
                    freed = 2
            # One slot freed (two when the limit grew): wake that many, not every waiting worker. Workers
            # waiting out a pause wake by their own timeout.
            self._cond.notify(freed)


class BatchStopped(Exception):
    """Raised in a worker when its batch has stopped; never leaves :func:`fetch_all`."""


def fetch_sessions(
    hook: BulkHook,
    platform: str,
    version_key: str,
    session_ids: Iterable[str],
    *,
    max_concurrency: int,
    skip_missing: bool,
) -> list[dict[str, Any]]:
    """
    :meth:`~airflow_provider_devrev.hooks.devrev.DevRevHook.get_sessions`: every argument checked, then
    :func:`fetch_all`.
    """
    validate_max_concurrency(max_concurrency)
    if isinstance(session_ids, str) or not isinstance(session_ids, Iterable):
        raise DevRevInvalidInputError("session_ids", session_ids, "must be a list of session ids")
    unique = list(dict.fromkeys(session_ids))
    requests = [get_session_request(platform, session_id, version_key) for session_id in unique]
    if not requests:
        return []
    hook.settings  # noqa: B018 - read the connection once, here, not in every worker thread
    results = fetch_all(hook, requests, max_concurrency=min(max_concurrency, len(requests)), skip_missing=skip_missing)
    return [session for session in results if session is not None]


def fetch_all(
    hook: BulkHook,
    requests: Sequence[ApiRequest],
    *,
    max_concurrency: int,
    skip_missing: bool,
    limit: AdaptiveLimit | None = None,
) -> list[dict[str, Any] | None]:
    """
    Send every request with at most ``max_concurrency`` in flight; results in the order of ``requests``.

    :param hook: A hook whose connection is already read; each worker thread uses a copy of it with its own
        keep-alive HTTP session (``requests.Session`` is not meant to be shared between threads).
    :param skip_missing: ``None`` for a 404 instead of raising :class:`DevRevNotFoundError`.
    :raises DevRevError: the first final failure. Nothing more is sent after it: queued requests are
        cancelled, and workers waiting out a pause or a retry give up at once. Requests already on the wire
        end within their timeout. The same happens when the calling thread is interrupted (a task timeout).
    """
    limit = limit or AdaptiveLimit(max_concurrency)

    real_time = hook._sleep is time.sleep

    def interruptible_sleep(seconds: float) -> None:
        # The hook's own retries (5xx, connection errors) wait through this, so a stopped batch ends the wait.
        if not real_time:
            hook._sleep(seconds)  # a hook built with its own sleep (a test's fake) keeps it
        limit.wait_unless_stopped(seconds if real_time else 0.0)

    local = threading.local()
    workers: list[BulkHook] = []
    workers_lock = threading.Lock()

    def worker_hook() -> BulkHook:
        clone: BulkHook | None = getattr(local, "hook", None)
        if clone is None:
            clone = local.hook = hook.worker_copy(retry_rate_limited=False, sleep=interruptible_sleep)
            with workers_lock:
                workers.append(clone)
        return clone

    from airflow_provider_devrev.progress import Progress

    progress = Progress(hook.log, f"Fetching {len(requests)} sessions")
    progress_lock = threading.Lock()

    def fetch(request: ApiRequest) -> dict[str, Any] | None:
        clone = worker_hook()
        for attempt in range(1, MAX_RATE_LIMITED_ATTEMPTS + 1):
            limit.acquire()
            try:
                result = clone.call(request)
            except DevRevError as err:
                policy = clone.settings.retry
                too_long = err.retry_after is not None and err.retry_after > policy.max_retry_wait
                if err.status_code != 429 or too_long or attempt == MAX_RATE_LIMITED_ATTEMPTS:
                    limit.release()
                    if skip_missing and isinstance(err, DevRevNotFoundError):
                        return None
                    raise
                # DevRev's own wait when it gave one (the backoff's floor would only idle a window that has
                # reopened); the policy's backoff when it did not.
                wait_for = err.retry_after if err.retry_after is not None else policy.wait_seconds(err, attempt)
                limit.release(rate_limited_for=wait_for)
                metrics.rate_limited(wait_for)
                hook.log.warning(
                    "DevRev %s rate limited (429); every worker pauses %.1f s, then %d in flight at most "
                    "(attempt %d of %d for this session)",
                    request.describe(),
                    wait_for,
                    limit.limit,
                    attempt,
                    MAX_RATE_LIMITED_ATTEMPTS,
                )
            except BaseException:
                limit.release()
                raise
            else:
                limit.release()
                with progress_lock:
                    progress.add(sessions=1)
                return result
        raise AssertionError("unreachable: the last attempt returns or raises")

    pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="devrev-get-sessions")
    try:
        futures = [pool.submit(fetch, request) for request in requests]
        wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:  # the first failure in request order; BatchStopped only follows a real one
            error = future.exception() if future.done() and not future.cancelled() else None
            if error is not None and not isinstance(error, BatchStopped):
                raise error
        return [future.result() for future in futures]
    finally:
        # Reached with every future done, or on a failure or an interruption of this thread: then stop the
        # workers (a waiting one gives up) and drop the queue, so that nothing more is sent.
        limit.stop()
        pool.shutdown(wait=True, cancel_futures=True)
        for clone in workers:
            clone.close()
