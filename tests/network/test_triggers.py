"""
The triggers over TLS and through the real proxy: DevRevSessionTrigger's events for a certificate or a proxy
that refuses (final, typed again on the worker), and the watcher (DevRevNewSessionsTrigger) listing through
an authenticating proxy, and logging a TLS failure without retrying it inside the poll.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_devrev.exceptions import DevRevProxyError, DevRevTLSError
from airflow_provider_devrev.triggers.devrev import DevRevNewSessionsTrigger, DevRevSessionTrigger
from airflow_provider_devrev.triggers.session import session_from_event
from tests.network.conftest import PROXY_PASSWORD, PROXY_USER, VERSION_KEY, add_session, use_connection
from tests.network.test_transports import logged_count

STEP_TIMEOUT = 30.0


def run_session_trigger(session: dict, monkeypatch) -> tuple[list[dict], list[float], dict]:
    """Run a DevRevSessionTrigger to its one event; its waits (and its hook's) are recorded, not slept."""
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(DevRevSessionTrigger, "sleep", staticmethod(sleep))

    trigger = DevRevSessionTrigger(
        devrev_conn_id="devrev_default",
        platform="android",
        session_id=session["session_id"],
        version_key=VERSION_KEY,
        poll_interval=5,
        hook_options={"max_retries": 3},
    )

    async def events():
        return [event.payload async for event in trigger.run()]

    return asyncio.run(events()), waits, trigger.serialize()[1]


def test_session_trigger_a_certificate_it_cannot_verify_ends_the_wait_with_a_final_tls_error(https_sim, monkeypatch):
    use_connection(monkeypatch, https_sim, ca_bundle=None)

    [event], waits, _ = run_session_trigger(add_session(https_sim), monkeypatch)

    assert event["status"] == "error"
    assert event["error_type"] == "tls_verification_failed"
    assert waits == []
    assert https_sim.connections_opened == 1
    with pytest.raises(DevRevTLSError, match="ca_bundle"):
        session_from_event(event)


def test_session_trigger_a_proxy_407_ends_the_wait_and_the_password_is_in_no_event_or_argument(
    https_sim, secured_proxy, monkeypatch
):
    use_connection(monkeypatch, https_sim, proxy=secured_proxy.url(f"{PROXY_USER}:{PROXY_PASSWORD}-wrong"))

    [event], waits, kwargs = run_session_trigger(add_session(https_sim), monkeypatch)

    assert event["error_type"] == "proxy_refused"
    assert waits == []
    assert secured_proxy.auth_failures() == 1
    assert PROXY_PASSWORD not in json.dumps(event)
    assert PROXY_PASSWORD not in json.dumps(kwargs)
    with pytest.raises(DevRevProxyError, match="407") as caught:
        session_from_event(event)
    assert f"{PROXY_USER}:***@" in str(caught.value)


class Watch:
    """Runs a watcher in the background; each of its sleeps is recorded and parks it until :meth:`poll`."""

    def __init__(self, trigger: DevRevNewSessionsTrigger, monkeypatch) -> None:
        self.trigger = trigger
        # The trigger sleeps and reads the time through its class attributes (so tests can replace them for
        # every instance); a sleep moves this clock on, so the next pass of its loop is a poll.
        self.now = time.time()
        monkeypatch.setattr(DevRevNewSessionsTrigger, "sleep", staticmethod(self._sleep))
        monkeypatch.setattr(DevRevNewSessionsTrigger, "clock", staticmethod(lambda: self.now))
        self.events: list[dict] = []
        self.sleeps: list[float] = []
        self._parked: asyncio.Queue[asyncio.Future[None]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        wake = asyncio.get_running_loop().create_future()
        await self._parked.put(wake)
        await wake

    async def poll(self) -> None:
        """Let the watcher run one pass of its loop, up to its next sleep."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._consume())
        else:
            self._wake.set_result(None)
        self._wake = await asyncio.wait_for(self._parked.get(), STEP_TIMEOUT)

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task

    async def _consume(self) -> None:
        async for event in self.trigger.run():
            self.events.append(event.payload)


def watcher() -> DevRevNewSessionsTrigger:
    return DevRevNewSessionsTrigger(
        platform="android", version_key=VERSION_KEY, poll_interval=30, event_spacing=0, hook_options={"max_retries": 2}
    )


def recent_session(sim) -> dict:
    created = (datetime.now(UTC) - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    session = sim.make_session("mobile", platform="android", created_at=created)
    return sim.add_session(session, version_key=VERSION_KEY)


def test_the_watcher_lists_through_an_authenticating_proxy_over_tls(https_sim, secured_proxy, monkeypatch):
    use_connection(monkeypatch, https_sim, proxy=secured_proxy.url(f"{PROXY_USER}:{PROXY_PASSWORD}"))

    async def scenario():
        watch = Watch(watcher(), monkeypatch)
        await watch.poll()  # the baseline
        new = recent_session(https_sim)
        await watch.poll()
        await watch.stop()
        return watch, new

    watch, new = asyncio.run(scenario())

    assert [event["session_id"] for event in watch.events] == [new["session_id"]]
    assert set(secured_proxy.connects()) == {f"127.0.0.1:{https_sim.port}"}
    assert secured_proxy.auth_failures() == 0


def test_the_watcher_logs_a_tls_failure_once_per_poll_without_retrying_it_inside_the_poll(
    https_sim, monkeypatch, caplog, capsys
):
    use_connection(monkeypatch, https_sim, ca_bundle=None)
    caplog.set_level(logging.WARNING)

    async def scenario():
        watch = Watch(watcher(), monkeypatch)
        await watch.poll()
        await watch.poll()
        await watch.stop()
        return watch

    watch = asyncio.run(scenario())

    out = capsys.readouterr()
    assert logged_count(caplog, out, "TLS certificate verification failed") == 2
    assert watch.events == []
    # One attempt per poll (no retry inside it), and the waits between polls grow as for any final error.
    assert https_sim.connections_opened == 2
    assert watch.sleeps == [30, 60]
