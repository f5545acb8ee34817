"""
:class:`DevRevSessionTrigger`: the async side of :class:`~airflow_provider_devrev.sensors.devrev.DevRevSessionSensor`,
waiting in the triggerer for one session to be uploaded, and the events it sends back to the worker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_devrev._compat import AirflowException
from airflow_provider_devrev._secrets import hide_optional
from airflow_provider_devrev.connection import HookOptions
from airflow_provider_devrev.contract import ApiRequest, get_session_request
from airflow_provider_devrev.exceptions import ERROR_CLASS_BY_TYPE, DevRevError, error_class_for_status
from airflow_provider_devrev.policy import (
    CheckHistory,
    SensorOutcome,
    describe_failure,
    next_check_delay,
    sensor_backoff_interval,
    sensor_outcome,
    wait_within_deadline,
)
from airflow_provider_devrev.triggers import classpath

#: ``error_type`` of the event sent when the wait's deadline passes; the sensor turns it into a sensor
#: timeout, so ``soft_fail`` skips the task exactly as in poke mode.
SENSOR_TIMEOUT = "sensor_timeout"
#: ``error_type`` of the event sent when the trigger itself failed (a bug, not an answer from DevRev).
TRIGGER_ERROR = "trigger_error"
#: The shortest wait between two polls of one trigger, whatever the sensor's ``poke_interval``.
MIN_POLL_WAIT = 0.1


class DevRevSessionTrigger(BaseTrigger):
    """
    Wait, without a worker slot, until DevRev has a session, then fire one event.

    Every ``poll_interval`` seconds it asks DevRev for the session, through the same hook, retry policy and
    outcome rules as the sensor's poke mode: 404 means "not uploaded yet"; 429, 5xx, connection errors and
    timeouts (once the hook's retries are spent) mean "try again at the next poll", which comes no sooner
    than a ``Retry-After`` asked; anything else ends the wait with an error event. All DevRev triggers on
    one event loop share one HTTP connection pool.

    It fires exactly one event: ``{"status": "success", "session": {...}}``, or
    ``{"status": "error", "error_type": ..., "message": ...}``. Its serialized arguments hold no secret: the
    token is read from the connection, asynchronously, when the trigger runs.

    :param devrev_conn_id: The Airflow connection to use.
    :param platform: ``android``, ``ios`` or ``web``.
    :param session_id: The session to wait for.
    :param version_key: The app version key the session was recorded under.
    :param poll_interval: Seconds between checks.
    :param end_time: Unix time after which the wait ends with a ``sensor_timeout`` error event (checked
        after each failed check, as in poke mode). It is absolute, so a trigger rebuilt after a triggerer
        restart keeps the original deadline. ``None``: no deadline.
    :param next_poll_at: Unix time of the first poll (the sensor's next check); ``None`` or a past time
        polls at once.
    :param exponential_backoff: Grow the wait between polls as the sensor's ``exponential_backoff`` does
        in poke mode (:func:`~airflow_provider_devrev.policy.sensor_backoff_interval`).
    :param max_wait: With ``exponential_backoff``, the longest wait between polls, in seconds.
    :param hook_options: ``timeout``, ``max_retries``, ``max_retry_wait`` for the hook (plain numbers).
    """

    #: Wall clock and sleep of the polling loop; class attributes so tests can run hours of simulated
    #: waiting in no time.
    clock: Callable[[], float] = staticmethod(time.time)
    sleep: Callable[[float], Awaitable[Any]] = staticmethod(asyncio.sleep)

    def __init__(
        self,
        *,
        devrev_conn_id: str,
        platform: str,
        session_id: str,
        version_key: str,
        poll_interval: float,
        end_time: float | None = None,
        next_poll_at: float | None = None,
        exponential_backoff: bool = False,
        max_wait: float | None = None,
        hook_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.devrev_conn_id = devrev_conn_id
        self.platform = platform
        self.session_id = session_id
        self.version_key = version_key
        self.poll_interval = float(poll_interval)
        self.end_time = end_time
        self.next_poll_at = next_poll_at
        self.exponential_backoff = exponential_backoff
        self.max_wait = max_wait
        # Validated, unless empty: a triggerer builds thousands of these, most with no options.
        self.hook_options = HookOptions(**hook_options).as_kwargs() if hook_options else {}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(devrev_conn_id={self.devrev_conn_id!r}, platform={self.platform!r}, "
            f"session_id={self.session_id!r}, version_key={self.version_key!r})"
        )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and JSON-safe arguments; never the token."""
        return (
            classpath(self),
            {
                "devrev_conn_id": self.devrev_conn_id,
                "platform": self.platform,
                "session_id": self.session_id,
                "version_key": self.version_key,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "next_poll_at": self.next_poll_at,
                "exponential_backoff": self.exponential_backoff,
                "max_wait": self.max_wait,
                "hook_options": dict(self.hook_options),
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """
        Poll until the session exists, a final error, or the deadline; then yield one event.

        Nothing but ``CancelledError`` (the trigger removed) escapes: an unexpected exception becomes the
        error event too, so the sensor fails with a message instead of waiting for the deferral timeout.
        """
        try:
            event = await self._wait()
        except Exception as err:
            # Logged with its traceback through Airflow's masker; the event names only the class.
            self.log.exception("Waiting for DevRev session %s failed unexpectedly", self.session_id)
            message = f"the trigger failed unexpectedly ({type(err).__name__}); see the triggerer's log"
            event = TriggerEvent(error_event(DevRevError(message, error_type=TRIGGER_ERROR)))
        yield event

    async def _wait(self) -> TriggerEvent:
        # A coroutine, not a second async generator: one left suspended after its event would be closed
        # by the event loop's finalizer, a task and a wake-up of the loop per wait.
        from airflow_provider_devrev.hooks._async_transport import shared_session
        from airflow_provider_devrev.hooks.devrev import DevRevHook

        hook = DevRevHook(self.devrev_conn_id, async_sleep=type(self).sleep, **self.hook_options)
        # Looked up once per wait, not at every poll: Airflow 3's logger resolves each method by name.
        log_not_yet = self.log.debug
        # Hold the loop's shared pool for the whole wait, so polls reuse warm connections.
        async with shared_session():
            # A trigger that was just deferred to continues the worker's cadence; one rebuilt after a
            # triggerer restart finds next_poll_at in the past and polls at once.
            wait = 0.0 if self.next_poll_at is None else self.next_poll_at - type(self).clock()
            check_number = 1  # the sensor's own first check, made on the worker
            history = CheckHistory()  # of this trigger's checks: a restart or the worker's check starts anew
            request: ApiRequest | None = None  # built (and validated) once, sent at every poll
            while True:
                check_number += 1
                if wait > 0:
                    await type(self).sleep(wait)
                try:
                    request = request or get_session_request(self.platform, self.session_id, self.version_key)
                    session = await hook.acall(request, deadline=self.end_time)
                except DevRevError as err:
                    after = self._after_failure(err, check_number, log_not_yet, history)
                    if isinstance(after, TriggerEvent):
                        return after
                    wait = after
                except AirflowException as err:  # e.g. the connection does not exist
                    return TriggerEvent(error_event(DevRevError(str(err), error_type="airflow_error")))
                else:
                    # At debug: the sensor logs the same line in the task's log when it resumes, and a
                    # second info line per wait was a tenth of what a wait costs the triggerer.
                    self.log.debug("Found session %s", self.session_id)
                    return TriggerEvent({"status": "success", "session": session})

    def _after_failure(
        self, err: DevRevError, check_number: int, log_not_yet: Callable[..., Any], history: CheckHistory
    ) -> TriggerEvent | float:
        """The event that ends the wait after a failed check, or the seconds until the next check."""
        outcome = sensor_outcome(err)
        if outcome is SensorOutcome.FAIL:
            return TriggerEvent(error_event(err))
        history.note(err)
        if outcome is SensorOutcome.NOT_YET:
            # One line per poll per wait would flood a triggerer holding thousands of waits.
            log_not_yet("Session %s not uploaded yet", self.session_id)
        else:
            self.log.warning("DevRev check failed (%s); trying again at the next poll", describe_failure(err))
        # Checked after a failed check, exactly as BaseSensorOperator does in poke mode.
        if self.end_time is not None and type(self).clock() > self.end_time:
            message = history.timeout_message(self.session_id)
            return TriggerEvent(error_event(DevRevError(message, error_type=SENSOR_TIMEOUT)))
        return self._next_wait(err, check_number)

    def _next_wait(self, err: DevRevError, check_number: int) -> float:
        interval = self.poll_interval
        if self.exponential_backoff:
            interval = sensor_backoff_interval(self.poll_interval, check_number, max_wait=self.max_wait)
        # As in poke mode: no sooner than a Retry-After, but the last check comes at the deadline, not after
        # it (a check that the connection's rate-limit pause holds past the deadline sends nothing).
        wait = wait_within_deadline(next_check_delay(interval, err), self.end_time, type(self).clock())
        # A poke_interval of 0 is legal in Airflow; here it would make thousands of waits spin on DevRev.
        return max(MIN_POLL_WAIT, wait)


def error_event(error: DevRevError) -> dict[str, Any]:
    """
    The payload of an error event: enough to raise the same typed error on the worker. Airflow stores it
    unmasked (``task_instance.next_kwargs``): the error's texts are hidden already, and so is its type here,
    which a hostile body may have set.
    """
    return {
        "status": "error",
        "error_type": hide_optional(error.error_type),
        "status_code": error.status_code,
        "message": error.message,
        "reference_id": error.reference_id,
    }


def session_from_event(event: Any) -> dict[str, Any]:
    """
    Check an event of :class:`DevRevSessionTrigger` and return its session.

    :raises DevRevError: the event reports an error (its ``error_type`` is kept), or is missing or malformed.
    """
    if not isinstance(event, Mapping):
        raise DevRevError(f"expected an event from DevRevSessionTrigger, got {type(event).__name__}")
    status = event.get("status")
    if status == "success" and isinstance(event.get("session"), dict):
        return dict(event["session"])
    if status == "error":
        message, error_type = event.get("message"), event.get("error_type")
        status_code, reference_id = event.get("status_code"), event.get("reference_id")
        status_code = status_code if isinstance(status_code, int) else None
        error_class = error_class_for_status(status_code) if status_code else DevRevError
        if not status_code and isinstance(error_type, str):
            error_class = ERROR_CLASS_BY_TYPE.get(error_type, DevRevError)
        raise error_class(
            message if isinstance(message, str) and message else "the trigger reported an error",
            status_code=status_code,
            error_type=error_type if isinstance(error_type, str) else None,
            reference_id=reference_id if isinstance(reference_id, str) else None,
        )
    raise DevRevError(f"malformed event from DevRevSessionTrigger: keys {sorted(map(str, event))}, status={status!r}")
