"""
The async transport's pool cannot be wedged: every DevRev trigger on an event loop shares one aiohttp pool,
and requests stuck on one host (a server that never sends its headers, here) must neither hold the other
hosts' requests nor queue their own host's for ever. A real server on 127.0.0.2 stalls, the simulator on
127.0.0.1 answers; no mocks.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from airflow_provider_devrev.exceptions import DevRevError, DevRevServerError
from airflow_provider_devrev.hooks._async_transport import POOL_SIZE
from airflow_provider_devrev.hooks.devrev import DevRevHook
from airflow_provider_devrev.testing import DevRevSimulator
from tests.network.stall_servers import StallServer
from tests.network.test_stall_matrix import SLACK, VERSION_KEY, connection_json

#: Requests stalled on one connection: twice what the pool holds for one host.
STALLED = 2 * POOL_SIZE


def test_requests_stalled_on_one_host_do_not_wedge_the_loops_pool(monkeypatch):
    """
    200 requests on one Airflow connection stalled (a server on 127.0.0.2 that never sends headers, a 60 s
    read timeout): a request on another connection, to another host, is answered at once; one on a third
    connection to the stalled host, queued for a pooled connection, gives up after its connect timeout; and the
    stalled host never gets more than the pool's connections per host.
    """
    stalled_host, queued_timeout = StallServer("silent", host="127.0.0.2"), 1.0
    with stalled_host, DevRevSimulator(host="127.0.0.1") as sim:
        monkeypatch.setenv("AIRFLOW_CONN_WEDGE_STALLED", connection_json(stalled_host.url, timeout=60))
        monkeypatch.setenv("AIRFLOW_CONN_WEDGE_QUEUED", connection_json(stalled_host.url, timeout=queued_timeout))
        monkeypatch.setenv("AIRFLOW_CONN_WEDGE_HEALTHY", sim.connection_json(max_retries=0))
        session = sim.add_session(sim.make_session("mobile", platform="android"), version_key=VERSION_KEY)

        async def scenario() -> tuple[Any, float, BaseException | None, float]:
            stalled = [
                asyncio.ensure_future(DevRevHook("wedge_stalled").aget_session("android", f"s{n}", VERSION_KEY))
                for n in range(STALLED)
            ]
            try:
                # The pool is full of stalled requests once the server holds as many connections as it allows.
                deadline = time.monotonic() + 30
                while stalled_host.open_connections < POOL_SIZE and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)  # polling the server's count, with a deadline
                assert stalled_host.open_connections == POOL_SIZE

                started = time.monotonic()
                try:
                    answer = await asyncio.wait_for(
                        DevRevHook("wedge_healthy").aget_session("android", session["session_id"], VERSION_KEY), 5
                    )
                except TimeoutError:
                    answer = "still waiting after 5 s"
                healthy_seconds = time.monotonic() - started

                started, queued_error = time.monotonic(), None
                try:
                    await asyncio.wait_for(DevRevHook("wedge_queued").aget_session("android", "q", VERSION_KEY), 10)
                except (DevRevError, TimeoutError) as err:
                    queued_error = err
                return answer, healthy_seconds, queued_error, time.monotonic() - started
            finally:
                for request in stalled:
                    request.cancel()
                await asyncio.gather(*stalled, return_exceptions=True)

        answer, healthy_seconds, queued_error, queued_seconds = asyncio.run(scenario())
        print(f"healthy host answered in {healthy_seconds:.2f} s; the queued request ended in {queued_seconds:.2f} s")

        assert answer == session
        assert healthy_seconds < 5
        assert isinstance(queued_error, DevRevServerError), queued_error
        assert "timed out while connecting" in str(queued_error)
        assert stalled_host.url in str(queued_error)
        assert queued_seconds < queued_timeout + SLACK
        assert stalled_host.accepted == POOL_SIZE
