"""
:func:`reset_caches`: forget what this process remembers of a DevRev connection, between tests.

A worker or triggerer process reads a connection once and keeps what it read: an event loop reuses a looked-up
connection for a minute (:data:`~airflow_provider_devrev.hooks._credentials.CONNECTION_TTL`), so thousands of
triggers make one lookup. Tests break that assumption: each starts its own simulator, on a new port, under the
same connection id, and tests that share an event loop would reach the previous test's simulator, long stopped;
and a 429 one test scripted would pause the next test's requests to the same host and token (the shared rate
limit, :mod:`airflow_provider_devrev.hooks._rate_gate`).
The ``devrev_simulator`` fixture calls :func:`reset_caches` before and after each test; call it too from a
fixture of your own that points ``devrev_default`` somewhere else.

Kept on purpose: the secrets registered for hiding (:mod:`airflow_provider_devrev._secrets`: forgetting one would
let a token an earlier test read show in a later test's error text), the numbering of connection lookups (never
reused), and caches whose results cannot go stale (an answer's metric name, a parsed error body, the contract's
session schema).
"""

from __future__ import annotations

import sys

__all__ = ["CACHING_MODULES", "reset_caches"]

#: The modules holding a process-wide cache, each with its own ``clear_caches()``. Found in ``sys.modules``,
#: not imported: a module not imported yet holds nothing, and importing these would load Airflow and aiohttp
#: into every test that uses the fixture.
CACHING_MODULES = (
    "airflow_provider_devrev.hooks._credentials",
    "airflow_provider_devrev.hooks._async_transport",
    "airflow_provider_devrev.hooks._rate_gate",
    "airflow_provider_devrev.metrics",
)


def reset_caches() -> None:
    """
    Clear every process-wide cache of the provider that remembers a connection, the route to it or the
    ``[metrics]`` configuration, so the next call reads them afresh. Safe at any time, from any thread; calls
    and triggers already running keep what they hold.
    """
    for name in CACHING_MODULES:
        module = sys.modules.get(name)
        if module is not None:
            module.clear_caches()
