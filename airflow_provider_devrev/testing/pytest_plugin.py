"""pytest plugin (entry point ``devrev``): the ``devrev_simulator`` fixture.

pytest loads this module in every run of every user who has the provider installed, so at import time
it touches nothing but pytest and typing; the simulator (and ``http.server``) is imported by the fixture.

Usage::

    def test_my_dag(devrev_simulator):
        devrev_simulator.add_fault("rate_limit", retry_after=0)
        ...  # AIRFLOW_CONN_DEVREV_DEFAULT points at the simulator for this test

    @pytest.mark.devrev_simulator(page_size=5, seed_data=False)
    def test_empty(devrev_simulator): ...

    @pytest.mark.devrev_simulator(tls=True)  # HTTPS; the connection's ca_bundle is devrev_simulator.ca_file
    def test_https(devrev_simulator): ...

The marker's keyword arguments go to :class:`~airflow_provider_devrev.testing.DevRevSimulator`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_devrev.testing.simulator import DevRevSimulator

CONN_ENV = "AIRFLOW_CONN_DEVREV_DEFAULT"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "devrev_simulator(**kwargs): DevRevSimulator arguments for the devrev_simulator fixture",
    )


@pytest.fixture
def devrev_simulator(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[DevRevSimulator]:
    """
    A running DevRev simulator, with ``AIRFLOW_CONN_DEVREV_DEFAULT`` set to its connection for the test.

    The provider's caches are cleared before and after (:func:`~airflow_provider_devrev.testing.reset_caches`):
    an event loop shared by several tests would otherwise reuse the connection an earlier test's simulator
    was looked up as, for a minute, and call that simulator, long stopped.
    """
    from airflow_provider_devrev.testing.caches import reset_caches
    from airflow_provider_devrev.testing.simulator import DevRevSimulator

    marker = request.node.get_closest_marker("devrev_simulator")
    simulator = DevRevSimulator(**(marker.kwargs if marker else {}))
    reset_caches()
    simulator.start()
    try:
        monkeypatch.setenv(CONN_ENV, simulator.connection_json())
        yield simulator
    finally:
        simulator.stop()
        reset_caches()
