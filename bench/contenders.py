"""
The three ways of holding many "wait until the session exists" in one event loop, compared by the capacity
benchmark. Each contender makes the same request (same URL, same headers) to the same server.

- ``devrev``: this provider's :class:`DevRevSessionTrigger`, consumed as Airflow's triggerer does.
- ``http``: ``HttpSensorTrigger`` from apache-airflow-providers-http, what users reach for otherwise
  (the http connection carries the same headers in its extras).
- ``minimal``: a plain polling loop on one shared ``aiohttp.ClientSession`` with a 100-connection pool and
  no Airflow at all: the practical limit of the approach.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlencode

from bench.harness import PLATFORM, TOKEN, VERSION_KEY

#: Called once per event a wait produces; ``True`` means the session was found.
Record = Callable[[bool], None]


class Contender(Protocol):
    """One way of waiting; :meth:`wait` returns when the wait is over (found, failed or given up)."""

    name: str

    async def start(self) -> None:
        """Set up what all waits share (called once, in the loop, before any wait)."""

    def prepare(self, session_id: str) -> Any:
        """Build what one wait runs (the triggerer inflates a trigger instance before starting its task)."""

    async def wait(self, prepared: Any, record: Record) -> None:
        """Run one wait built by :meth:`prepare`, calling ``record`` with the outcome of each event."""

    async def stop(self) -> None:
        """Release what :meth:`start` set up."""


async def consume(trigger: Any, record: Record, success: Callable[[Any], bool]) -> None:
    """
    Run a trigger the way Airflow's triggerer does: iterate ``run()`` to its end, handing on each event,
    then ``cleanup()``.
    """
    try:
        async for event in trigger.run():
            record(success(event.payload))
    finally:
        await trigger.cleanup()


class DevRevContender:
    """:class:`~airflow_provider_devrev.triggers.devrev.DevRevSessionTrigger`, as deferred by the sensor."""

    name = "devrev"

    def __init__(self, poll_interval: float) -> None:
        self.poll_interval = poll_interval

    async def start(self) -> None:
        """Nothing is shared explicitly: the triggers share the loop's pool by themselves."""

    def prepare(self, session_id: str) -> Any:
        """One trigger, as ``DevRevSessionSensor(deferrable=True)`` would defer it."""
        from airflow_provider_devrev.triggers.devrev import DevRevSessionTrigger

        return DevRevSessionTrigger(
            devrev_conn_id="devrev_default",
            platform=PLATFORM,
            session_id=session_id,
            version_key=VERSION_KEY,
            poll_interval=self.poll_interval,
            end_time=None,
            hook_options={},
        )

    async def wait(self, prepared: Any, record: Record) -> None:
        """Run the trigger to its end; its event says ``success`` or ``error``."""
        await consume(prepared, record, lambda payload: payload.get("status") == "success")

    async def stop(self) -> None:
        """Nothing to release: the pool closes with its last trigger."""


class HttpSensorContender:
    """``HttpSensorTrigger``, as ``HttpSensor(deferrable=True)`` defers it (request params as ``data``)."""

    name = "http"

    def __init__(self, poll_interval: float) -> None:
        self.poll_interval = poll_interval

    async def start(self) -> None:
        """Nothing is shared: the trigger opens a client session per poll."""

    def prepare(self, session_id: str) -> Any:
        """One trigger, as ``HttpSensor(deferrable=True, request_params=...)`` would defer it."""
        from airflow.providers.http.triggers.http import HttpSensorTrigger

        return HttpSensorTrigger(
            endpoint="/observability.sessions.get",
            http_conn_id="http_default",
            method="GET",
            data={"platform": PLATFORM, "session_id": session_id, "version_key": VERSION_KEY},
            poke_interval=self.poll_interval,
        )

    async def wait(self, prepared: Any, record: Record) -> None:
        """Run the trigger to its end; it fires ``True`` on the first non-404 answer."""
        await consume(prepared, record, lambda payload: payload is True)

    async def stop(self) -> None:
        """Nothing to release."""


class MinimalContender:
    """A bare polling loop on one shared ``aiohttp.ClientSession``: no Airflow, no retries, no logging."""

    name = "minimal"

    def __init__(self, poll_interval: float, base_url: str) -> None:
        self.poll_interval = poll_interval
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json", "X-Devrev-Scope": "beta"}
        self.session: Any = None

    async def start(self) -> None:
        """One client session and pool (100 connections, aiohttp's default) for every wait."""
        import aiohttp

        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))

    def prepare(self, session_id: str) -> Any:
        """The URL to poll."""
        query = urlencode({"platform": PLATFORM, "session_id": session_id, "version_key": VERSION_KEY})
        return f"{self.base_url}/observability.sessions.get?{query}"

    async def wait(self, prepared: Any, record: Record) -> None:
        """Poll until 200 (found) or anything but 404 (failed)."""
        url = prepared
        while True:
            async with self.session.get(url, headers=self.headers) as response:
                body = await response.read()
                status = response.status
            if status != 404:
                record(status == 200 and isinstance(json.loads(body).get("session"), dict))
                return
            await asyncio.sleep(self.poll_interval)

    async def stop(self) -> None:
        """Close the shared session."""
        await self.session.close()


CONTENDERS = ("devrev", "http", "minimal")


def make_contender(name: str, *, poll_interval: float, base_url: str) -> Contender:
    """The contender called ``name``."""
    if name == "devrev":
        return DevRevContender(poll_interval)
    if name == "http":
        return HttpSensorContender(poll_interval)
    if name == "minimal":
        return MinimalContender(poll_interval, base_url)
    raise ValueError(f"unknown contender {name!r}; expected one of {', '.join(CONTENDERS)}")
