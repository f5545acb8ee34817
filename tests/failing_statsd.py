"""
A StatsD client for a metrics agent that is down, set as Airflow's ``[metrics] statsd_custom_client_path``.

It sends each metric over TCP (as to an agent that takes StatsD over TCP) to ``statsd_host:statsd_port``; the
tests point that at a loopback port where nothing listens, so every metric fails with a real
``ConnectionRefusedError``. Airflow's StatsD logger lets a custom client's error through to the caller (the
stock client's UDP sends swallow theirs), so this is how a metrics backend's failure reaches the provider.
"""

from __future__ import annotations

import socket
from typing import ClassVar

from statsd import StatsClient


class RefusedStatsClient(StatsClient):
    #: Every metric this process tried to send, in order, whether or not it got anywhere.
    attempts: ClassVar[list[str]] = []

    def _send(self, data: str) -> None:
        type(self).attempts.append(data)
        with socket.create_connection(self._addr, timeout=5) as agent:
            agent.sendall(data.encode("ascii"))
