"""Fakes of time: a clock for hours of simulated waiting in no real time, and a sleep that only records."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


class FakeClock:
    """
    Time that moves only when something sleeps on it.

    It stands in for the ``time`` module where a test patches it (``time()``, ``monotonic()``,
    ``sleep()``; anything else falls through to the real module), and offers ``async_sleep`` for the
    trigger. ``at(offset, action)`` runs ``action`` once the clock passes ``start + offset``, from inside
    the sleep that passes it: a way to change the world (stop a server, clear a fault) mid-wait.
    """

    def __init__(self, start: float | None = None) -> None:
        self.start = time.time() if start is None else start
        self.now = self.start
        self.sleeps: list[float] = []
        self._actions: list[tuple[float, Callable[[], Any]]] = []

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now - self.start + 1_000.0

    def elapsed(self) -> float:
        return self.now - self.start

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        due = [entry for entry in self._actions if entry[0] <= self.now]
        self._actions = [entry for entry in self._actions if entry[0] > self.now]
        for _, action in sorted(due, key=lambda entry: entry[0]):
            action()

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)

    def at(self, offset: float, action: Callable[[], Any]) -> None:
        self._actions.append((self.start + offset, action))

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class FakeSleep:
    """Records the waits a hook asked for, instead of waiting (``sleep=`` and ``async_sleep=`` alike)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
