"""The ``devrev_simulator`` fixture leaves nothing of a test's simulator to the next: ``reset_caches``."""

from __future__ import annotations

import asyncio
import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from airflow_provider_devrev.hooks import _credentials
from airflow_provider_devrev.hooks.devrev import DevRevHook
from airflow_provider_devrev.testing import DevRevSimulator, reset_caches
from airflow_provider_devrev.testing.caches import CACHING_MODULES
from tests.test_layout import modules

#: Process-wide caches that reset_caches leaves on purpose, and why (see testing/caches.py).
PURE_CACHES = {
    # An answer's metric name from its path and status.
    "airflow_provider_devrev.metrics._answer_metric",
    # Airflow's metrics object, which reads its backend at each call.
    "airflow_provider_devrev.metrics._stats",
    # A parsed error body, from its bytes.
    "airflow_provider_devrev._api_answers._cached_error_body",
    # The async transport's send function, imported once.
    "airflow_provider_devrev.hooks.devrev._async_send",
    # The contract's session schema, parsed from the installed openapi.yaml.
    "airflow_provider_devrev.testing.session_schema._validators",
    # The JSON scanner's compiled pattern for a run of flat members, from the key it must stop at.
    "airflow_provider_devrev.hooks._json_scan._object_run",
    # The OperatorPartial subclass that flags mapped exports as rescheduling, built once.
    "airflow_provider_devrev._compat._flagging_partial_class",
    # urllib3's connection classes with the request watch's, built once.
    "airflow_provider_devrev.hooks._request_watch._watched_classes",
}

INNER_TESTS = """
import asyncio

from airflow_provider_devrev.hooks.devrev import DevRevHook
from airflow_provider_devrev.testing import SEED_ANDROID_SESSION_ID, SEED_VERSION_KEY

# One loop for both tests, as a session-scoped event loop (pytest-asyncio's, anyio's) is: a triggerer's
# connection cache is kept per loop.
LOOP = asyncio.new_event_loop()
SEEN = []


def fetch_through_the_async_hook(simulator):
    hook = DevRevHook(max_retries=0)
    session = LOOP.run_until_complete(hook.aget_session("android", SEED_ANDROID_SESSION_ID, SEED_VERSION_KEY))
    assert session["session_id"] == SEED_ANDROID_SESSION_ID
    # Answered by this test's simulator, not only by some simulator.
    assert [r.path for r in simulator.requests] == ["/observability.sessions.get"]
    SEEN.append(simulator.url)


def test_first(devrev_simulator):
    fetch_through_the_async_hook(devrev_simulator)


def test_second_reaches_its_own_simulator(devrev_simulator):
    assert devrev_simulator.url not in SEEN
    fetch_through_the_async_hook(devrev_simulator)
"""


def test_tests_sharing_an_event_loop_each_reach_their_own_simulator(tmp_path: Path) -> None:
    (tmp_path / "test_shared_loop.py").write_text(textwrap.dedent(INNER_TESTS))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "test_shared_loop.py", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "2 passed" in result.stdout


def test_reset_caches_forgets_the_loops_connection_and_its_settings(monkeypatch) -> None:
    loop = asyncio.new_event_loop()
    try:
        with DevRevSimulator() as simulator:
            monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", simulator.connection_json())
            loop.run_until_complete(DevRevHook().aget_settings())
            assert "devrev_default" in _credentials._CONNECTIONS[loop]
            assert _credentials._SETTINGS_BY_LOOKUP
            started = _credentials.lookups_started()

            reset_caches()

            assert loop not in _credentials._CONNECTIONS
            assert not _credentials._SETTINGS_BY_LOOKUP
            # Lookup numbers are never reused, reset or not.
            loop.run_until_complete(DevRevHook().aget_settings())
            assert _credentials.lookups_started() == started + 1
    finally:
        loop.close()


def test_every_process_wide_cache_is_reset_or_listed_as_pure() -> None:
    """A cache added later must be cleared by reset_caches, or be named here as one that cannot go stale."""
    found: set[str] = set()
    for name in modules():
        if name.endswith("__main__"):
            continue
        module = importlib.import_module(name)
        for attribute, value in vars(module).items():
            if callable(getattr(value, "cache_clear", None)) and getattr(value, "__module__", None) == name:
                found.add(f"{name}.{attribute}")
    cleared = {cache for cache in found if cache.rpartition(".")[0] in CACHING_MODULES} - PURE_CACHES
    assert found - cleared == PURE_CACHES
    for name in CACHING_MODULES:
        assert callable(importlib.import_module(name).clear_caches)
    # Each cleared one really is emptied.
    from airflow_provider_devrev import metrics
    from airflow_provider_devrev.hooks import _async_transport
    from airflow_provider_devrev.network import NetworkSettings

    metrics._enabled()
    _async_transport.route(NetworkSettings(verify=False))
    caches = {cache: _resolve(cache) for cache in cleared}
    assert set(caches) == {
        "airflow_provider_devrev.metrics._enabled",
        "airflow_provider_devrev.hooks._async_transport.route",
    }
    assert all(wrapper.cache_info().currsize > 0 for wrapper in caches.values())
    reset_caches()
    assert {cache: wrapper.cache_info().currsize for cache, wrapper in caches.items()} == dict.fromkeys(caches, 0)


def _resolve(dotted: str) -> object:
    module, _, attribute = dotted.rpartition(".")
    return getattr(importlib.import_module(module), attribute)
