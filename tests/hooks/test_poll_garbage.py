"""
A failed call leaves no reference cycle behind: a triggerer polls thousands of waits, almost every poll a 404,
and cyclic garbage per poll would make Python's cyclic collector walk the triggerer's whole heap over and over.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Iterator

import pytest

from airflow_provider_devrev.contract import get_session_request
from airflow_provider_devrev.exceptions import DevRevError, DevRevNotFoundError
from airflow_provider_devrev.hooks.devrev import DevRevHook

POLLS = 20


@pytest.fixture
def saved_garbage() -> Iterator[Callable[[], list[object]]]:
    """What the cyclic collector finds from here on (kept in ``gc.garbage``, not freed), then the normal state."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)

    def collect() -> list[object]:
        gc.collect()
        return list(gc.garbage)

    try:
        yield collect
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def _errors(objects: list[object]) -> list[object]:
    return [obj for obj in objects if isinstance(obj, DevRevError)]


def test_async_404_polls_leave_no_cyclic_garbage(devrev_simulator, saved_garbage):
    from airflow_provider_devrev.hooks._async_transport import shared_session

    hook = DevRevHook(max_retries=0)
    request = get_session_request("android", "not-uploaded-yet", "vk-1")

    async def poll() -> int:
        not_found = 0
        async with shared_session():
            for _ in range(POLLS):
                try:
                    await hook.acall(request)
                except DevRevNotFoundError:
                    not_found += 1
        return not_found

    assert asyncio.run(poll()) == POLLS
    assert _errors(saved_garbage()) == []


def test_sync_404_calls_leave_no_cyclic_garbage(devrev_simulator, saved_garbage):
    hook = DevRevHook(max_retries=0)
    for _ in range(POLLS):
        with pytest.raises(DevRevNotFoundError):
            hook.get_session("android", "not-uploaded-yet", "vk-1")
    assert _errors(saved_garbage()) == []
