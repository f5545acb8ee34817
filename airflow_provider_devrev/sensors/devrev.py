"""Wait until a DevRev session has been uploaded."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_devrev._arguments import SessionArgumentsMixin
from airflow_provider_devrev._compat import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
    reschedule_started_at,
)
from airflow_provider_devrev.connection import HookOptions
from airflow_provider_devrev.contract import get_session_request, summarize_session
from airflow_provider_devrev.exceptions import DevRevError
from airflow_provider_devrev.links import DevRevSessionLink, keep_session_url
from airflow_provider_devrev.policy import (
    CheckHistory,
    SensorOutcome,
    describe_failure,
    next_check_delay,
    sensor_outcome,
    wait_within_deadline,
)

if TYPE_CHECKING:
    from airflow_provider_devrev._compat import Context


class DevRevSessionSensor(SessionArgumentsMixin, BaseSensorOperator):
    """
    Wait until DevRev has a session (the SDKs upload sessions some time after they end), then push it.

    When the session exists, the sensor succeeds and its ``return_value`` XCom is the ``session`` object
    exactly as DevRev sent it. The outcome of each check is the same in every mode:

    - 404 ``not_found``: not uploaded yet; check again after ``poke_interval``.
    - 429, 5xx, connection errors and timeouts, once the hook's own retries are spent: one log line, and
      check again after ``poke_interval``, or later if DevRev's ``Retry-After`` asked for more; the
      sensor's ``timeout`` bounds the whole wait: no retry starts after it, and the wait before the next
      check never goes past it, so the sensor ends at most one request's timeouts late. If its last three
      checks (or all, if fewer) got no answer from DevRev, its timeout says so, with the last error,
      instead of blaming the session.
    - 400, 401, 403, 413 or an unexpected body: fail at once (``AirflowFailException``, so no task retry):
      waiting cannot fix them. With ``soft_fail`` or ``never_fail`` the task is skipped instead, as for any
      sensor failure.
    - The ``timeout``: ``AirflowSensorTimeout``; ``soft_fail`` skips it, ``never_fail`` does not (Airflow's
      poke mode ignores ``never_fail`` at the deadline, and so does every mode here).

    In ``deferrable`` mode the sensor checks once on the worker, then hands the wait to
    :class:`~airflow_provider_devrev.triggers.devrev.DevRevSessionTrigger`, which applies the same rules
    and the same deadline (``timeout`` counted from the sensor's start), so ``soft_fail``, ``never_fail``
    and timeouts behave exactly as in poke mode.

    :param platform: ``android``, ``ios`` or ``web``. Templated.
    :param session_id: The session to wait for. Templated.
    :param version_key: The app version key the session was recorded under. Templated.
    :param devrev_conn_id: The DevRev connection. Templated.
    :param request_timeout: Seconds to wait for each read of an answer: the connection's ``timeout`` extra,
        named so because ``timeout`` is the sensor's own. Not the connection's ``request_timeout`` extra,
        which bounds a whole request, body included (default 300 s).
    :param max_retries: Retries within one check (overrides the connection's).
    :param max_retry_wait: Longest ``Retry-After`` waited out within one check; a longer one ends the check,
        and the next check comes no sooner than DevRev asked, in every mode.
    :param deferrable: Wait in the triggerer instead of a worker slot. Default: Airflow's
        ``[operators] default_deferrable``.
    """

    template_fields: Sequence[str] = SessionArgumentsMixin.SESSION_TEMPLATE_FIELDS
    ui_color = "#e6f0ff"
    operator_extra_links = (DevRevSessionLink(),)

    def __init__(
        self,
        *,
        platform: str,
        session_id: str,
        version_key: str,
        devrev_conn_id: str = "devrev_default",
        request_timeout: float | None = None,
        max_retries: int | None = None,
        max_retry_wait: float | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._set_session_arguments(
            platform=platform,
            session_id=session_id,
            version_key=version_key,
            devrev_conn_id=devrev_conn_id,
            hook_options=HookOptions(timeout=request_timeout, max_retries=max_retries, max_retry_wait=max_retry_wait),
        )
        self.deferrable = deferrable
        self._last_failure: DevRevError | None = None
        #: Unix time the sensor's ``timeout`` ends; set by ``execute``, ``None`` for a bare ``poke`` call.
        self._deadline: float | None = None
        self._history = CheckHistory()
        #: Whether the link was kept: ``None`` not yet, ``False`` before the connection could be read.
        self._link_kept: bool | None = None

    def poke(self, context: Context) -> bool | PokeReturnValue:
        self._last_failure = None
        try:
            request = get_session_request(self.platform, self.session_id, self.version_key)
            session = self.hook.call(request, deadline=self._deadline)
        except DevRevError as err:
            # Before _not_done reads the clock: Airflow reads it again right after this check returns, and a link
            # kept in between (an XCom write) widened the gap in which the two disagree about the deadline.
            self._keep_link(context)
            return self._not_done(err)
        finally:
            self._keep_link(context)
        self.log.info("Found %s", summarize_session(session))
        return PokeReturnValue(is_done=True, xcom_value=session)

    def _keep_link(self, context: Context) -> None:
        # At the first check, so a waiting sensor has its link on Airflow 2.11, whose UI reads the XCom at once
        # (3.x's reads what the task kept when it stops running); once more if the connection could not be read
        # then. Not at every poke: a bad template is logged once.
        settings = self.hook.settings_read
        if self._link_kept is None or (not self._link_kept and settings is not None):
            keep_session_url(self, context, settings, **self.session_values())
            self._link_kept = settings is not None

    def _not_done(self, err: DevRevError) -> bool:
        self._last_failure = err
        outcome = sensor_outcome(err)
        if outcome is SensorOutcome.FAIL:
            raise self._cannot_succeed(err) from err
        self._history.note(err)
        if outcome is SensorOutcome.NOT_YET:
            self.log.info("Session %s is not uploaded yet", self.session_id)
        else:
            self.log.warning("DevRev check failed (%s); trying again at the next poke", describe_failure(err))
        # Airflow raises its own timeout right after a check past the deadline, saying only that time ran out;
        # when DevRev was never reached, say that instead, in the words of the trigger's timeout event.
        if self._deadline is not None and time.time() > self._deadline and self._history.never_reached():
            raise _deadline_passed(self._history.timeout_message(self.session_id))
        return False

    def _cannot_succeed(self, err: DevRevError) -> AirflowFailException:
        # AirflowFailException: no task retry either, since waiting cannot fix it; the same text in every mode.
        return AirflowFailException(f"waiting for session {self.session_id!r} cannot succeed: {err}")

    def _get_next_poke_interval(self, started_at: Any, run_duration: Any, poke_count: int) -> float:
        # Airflow's interval (exponential_backoff included), or longer if a Retry-After asked for more, cut so
        # the last check comes at the deadline rather than after it: that check sends nothing while the
        # connection's shared rate-limit pause lasts past the deadline, so the timeout fires on time. The same
        # rule as the trigger's, so poke, reschedule and deferrable modes agree.
        interval = super()._get_next_poke_interval(started_at, run_duration, poke_count)
        return wait_within_deadline(next_check_delay(interval, self._last_failure), self._deadline, time.time())

    def execute(self, context: Context) -> Any:
        started = time.time()
        if self.reschedule:
            started = reschedule_started_at(self, context) or started
        self._deadline = started + self.timeout
        if not self.deferrable:
            with self._deadline_not_skipped():
                return super().execute(context)
        first = self._first_check(context)
        if isinstance(first, PokeReturnValue):
            return first.xcom_value
        if time.time() - started > self.timeout:
            # Poke mode's loop reads the clock after each check and, past the timeout, neither waits nor checks
            # again: a first check that took longer than the whole timeout ends the wait here too.
            message = (
                f"Sensor has timed out; run duration of {time.time() - started} seconds exceeds "
                f"the specified timeout of {self.timeout}."
            )
            if self.soft_fail:
                raise AirflowSkipException(message)
            raise AirflowSensorTimeout(message)
        # The trigger's first poll comes when poke mode's second check would: Airflow's interval after
        # check 1 (exponential_backoff included), or a longer Retry-After.
        delay = self._get_next_poke_interval(started, lambda: time.time() - started, 1)
        self._defer(end_time=started + self.timeout, next_poll_at=time.time() + delay)

    def _first_check(self, context: Context) -> bool | PokeReturnValue:
        """
        The deferrable sensor's check on the worker, its failures handled as poke mode's loop handles them
        (``BaseSensorOperator.execute``): ``soft_fail`` and ``never_fail`` (Airflow 2.10+) skip the task;
        ``silent_fail`` turns an unexpected error into "not yet".
        """
        never_fail = getattr(self, "never_fail", False)  # BaseSensorOperator has it from Airflow 2.10
        try:
            return self.poke(context)
        except (AirflowSensorTimeout, AirflowFailException) as err:
            if self.soft_fail:
                raise AirflowSkipException("Skipping due to soft_fail is set to True.") from err
            if never_fail and not isinstance(err, AirflowSensorTimeout):  # the deadline: see _deadline_not_skipped
                raise AirflowSkipException("Skipping due to never_fail is set to True.") from err
            raise
        except AirflowSkipException:
            raise
        except Exception as err:
            if getattr(self, "silent_fail", False):
                self.log.error("Sensor poke failed: %s", type(err).__name__)
                return False
            if never_fail:
                raise AirflowSkipException("Skipping due to never_fail is set to True.") from err
            raise

    def _defer(self, *, end_time: float, next_poll_at: float) -> None:
        from airflow_provider_devrev.triggers.devrev import DevRevSessionTrigger

        trigger = DevRevSessionTrigger(
            devrev_conn_id=self.devrev_conn_id,
            platform=self.platform,
            session_id=self.session_id,
            version_key=self.version_key,
            poll_interval=self.poke_interval,
            end_time=end_time,
            next_poll_at=next_poll_at,
            exponential_backoff=self.exponential_backoff,
            max_wait=self.max_wait.total_seconds() if self.max_wait else None,
            hook_options=self.hook_options.as_kwargs(),
        )
        # The trigger enforces the deadline itself, with one last check after it as poke mode makes;
        # Airflow's own deferral timeout is the backstop for a triggerer that is down, set later so the
        # trigger's clearer event normally comes first.
        timeout = timedelta(seconds=max(0.0, end_time - time.time()) + 2 * self.poke_interval + 60)
        self.defer(trigger=trigger, method_name="execute_complete", timeout=timeout)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        with self._deadline_not_skipped():
            return super().resume_execution(next_method, next_kwargs, context)

    @contextmanager
    def _deadline_not_skipped(self) -> Iterator[None]:
        """
        Let the sensor's deadline fail the task under ``never_fail``, as Airflow's poke loop does on every
        version (only ``soft_fail`` skips a timeout there). Airflow skips it elsewhere: its poke loop skips an
        ``AirflowSensorTimeout`` raised by ``poke`` (ours, saying DevRev was never reached), and 3.3's
        ``resume_execution`` (not 2.11's or 3.0's) skips any failure of a resumed sensor, the trigger's
        deadline included.

        Only a skip of this sensor's own deadline (:func:`_deadline_passed`) under ``never_fail`` is turned
        back: a skip a subclass raises on purpose stays a skip, whatever it chains.
        """
        try:
            yield
        except AirflowSkipException as skip:
            timeout = skip.__cause__
            if getattr(timeout, _OUR_DEADLINE, False) and getattr(self, "never_fail", False) and not self.soft_fail:
                # A new exception: re-raising ``timeout`` itself would chain it to the skip that chains it.
                raise _deadline_passed(*timeout.args) from timeout.__cause__  # type: ignore[union-attr]
            raise

    def execute_complete(self, context: Context, event: Any = None) -> dict[str, Any]:
        """Resume after the trigger fired: return the session, or fail as poke mode would."""
        from airflow_provider_devrev.triggers.devrev import SENSOR_TIMEOUT, session_from_event

        try:
            session = session_from_event(event)
        except DevRevError as err:
            if err.error_type == SENSOR_TIMEOUT:
                raise _deadline_passed(str(err)) from err
            if getattr(self, "never_fail", False):
                # Airflow 2.11's and 3.0's resume_execution apply soft_fail but not never_fail; poke mode skips.
                raise AirflowSkipException("Skipping due to never_fail is set to True.") from err
            # resume_execution applies soft_fail to any failure here, as execute() does in poke mode.
            raise self._cannot_succeed(err) from err
        self.log.info("Found %s", summarize_session(session))
        return session


#: Set on the ``AirflowSensorTimeout`` this sensor raises at its deadline, so that only those are told apart
#: from a timeout a subclass raises and skips on purpose.
_OUR_DEADLINE = "devrev_sensor_deadline"


def _deadline_passed(*args: Any) -> AirflowSensorTimeout:
    """An ``AirflowSensorTimeout`` marked as this sensor's deadline (see ``_deadline_not_skipped``)."""
    timeout = AirflowSensorTimeout(*args)
    setattr(timeout, _OUR_DEADLINE, True)
    return timeout
