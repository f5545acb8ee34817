"""
What one wait costs a worker, in a fresh process: ``DevRevSessionSensor`` in poke, reschedule and deferrable
mode, for a session that appears 60 s after the sensor starts, on a simulated clock.

Run by :mod:`bench.worker_cost`. Sleeping is simulated: every sleep of the sensor (poke mode), every
reschedule (reschedule mode) and every sleep of the trigger (deferrable mode) moves this process's clock and
the server's clock forward by that much, instantly, so 60 s of waiting takes milliseconds and the session
appears exactly when it would have. Requests are real and are counted by the server.

Not simulated, and not counted: what Airflow itself spends to start a task on a worker (a process, the DAG
file parsed, API round trips). Reschedule mode pays it once per poke, deferrable mode twice per wait
(start, then resume), poke mode once.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from unittest import mock

from bench.harness import PLATFORM, VERSION_KEY, BenchServer, control_client, write_result

#: Appears ``APPEAR_AFTER_MS`` after the server's epoch (see :mod:`bench.server`).
APPEAR_AFTER_MS = 60_000


@dataclass
class SimulatedClock:
    """Real time plus a shift that sleeping adds to, here and on the server."""

    server: BenchServer
    shift: float = 0.0

    def time(self) -> float:
        """Unix time on the simulated clock."""
        return time.time() + self.shift

    def monotonic(self) -> float:
        """Monotonic time on the simulated clock."""
        return time.monotonic() + self.shift

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass at once."""
        self.shift += seconds
        self.server.command(f"advance {seconds}")

    async def async_sleep(self, seconds: float) -> None:
        """:meth:`sleep` for the trigger; still yields to the loop, as a real sleep does."""
        self.sleep(seconds)
        await asyncio.sleep(0)


@dataclass
class Tally:
    """What one mode cost."""

    task_starts: int = 0
    worker_seconds: float = 0.0
    triggerer_seconds: float = 0.0

    def on_worker(self, clock: SimulatedClock, run: Callable[[], Any]) -> Any:
        """Run one task start on the worker, adding the simulated time it holds the slot."""
        self.task_starts += 1
        started = clock.monotonic()
        try:
            return run()
        finally:
            self.worker_seconds += clock.monotonic() - started


class FakeTaskInstance:
    """What reschedule mode asks the task instance: when the first try of this sensor started."""

    def __init__(self, first_start: Any) -> None:
        self.first_start = first_start

    def get_first_reschedule_date(self, context: Any) -> Any:
        """The start of the first try (Airflow reads it from its database)."""
        return self.first_start


def make_sensor(mode: str, poke_interval: float) -> Any:
    """A fresh sensor, as every task start on a worker builds one."""
    from airflow_provider_devrev.sensors.devrev import DevRevSessionSensor

    return DevRevSessionSensor(
        task_id="wait_for_session",
        platform=PLATFORM,
        session_id=f"sensor-{APPEAR_AFTER_MS}",
        version_key=VERSION_KEY,
        poke_interval=poke_interval,
        timeout=3600,
        mode="reschedule" if mode == "reschedule" else "poke",
        deferrable=mode == "deferrable",
    )


def poke_mode(clock: SimulatedClock, poke_interval: float) -> Tally:
    """One task start that pokes and sleeps in its worker slot until the session is there."""
    import airflow.sdk.bases.sensor as sensor_module

    tally = Tally()
    with mock.patch.object(sensor_module, "time", clock):
        tally.on_worker(clock, lambda: make_sensor("poke", poke_interval).execute({}))
    return tally


def reschedule_mode(clock: SimulatedClock, poke_interval: float) -> Tally:
    """One task start per poke; between pokes the slot is free and the scheduler waits ``poke_interval``."""
    from airflow.sdk import timezone
    from airflow.sdk.exceptions import AirflowRescheduleException

    tally = Tally()
    context = {"ti": FakeTaskInstance(timezone.utcnow())}
    while True:
        try:
            tally.on_worker(clock, lambda: make_sensor("reschedule", poke_interval).execute(context))
        except AirflowRescheduleException as reschedule:
            clock.sleep(max(0.0, (reschedule.reschedule_date - timezone.utcnow()).total_seconds()))
        else:
            return tally


def deferrable_mode(clock: SimulatedClock, poke_interval: float) -> Tally:
    """A task start that pokes once and defers; the trigger waits; a second task start resumes."""
    from airflow.sdk.exceptions import TaskDeferred

    from airflow_provider_devrev.triggers.devrev import DevRevSessionTrigger

    tally = Tally()
    sensor = make_sensor("deferrable", poke_interval)
    try:
        tally.on_worker(clock, lambda: sensor.execute({}))
    except TaskDeferred as deferred:
        trigger, method = deferred.trigger, deferred.method_name
    else:
        raise RuntimeError("the sensor found the session at once: nothing to measure")
    started = clock.monotonic()
    with (
        mock.patch.object(DevRevSessionTrigger, "clock", staticmethod(clock.time)),
        mock.patch.object(DevRevSessionTrigger, "sleep", staticmethod(clock.async_sleep)),
    ):
        event = asyncio.run(first_event(trigger))
    tally.triggerer_seconds = clock.monotonic() - started
    sensor = make_sensor("deferrable", poke_interval)  # the resumed task is a new process, a new operator
    tally.on_worker(clock, lambda: sensor.resume_execution(method, {"event": event}, {}))
    return tally


async def first_event(trigger: Any) -> Any:
    """Run a trigger as the triggerer does and return the payload of its event."""
    payload = None
    async for event in trigger.run():
        payload = event.payload
    return payload


MODES: dict[str, Callable[[SimulatedClock, float], Tally]] = {
    "poke": poke_mode,
    "reschedule": reschedule_mode,
    "deferrable": deferrable_mode,
}


def measure_mode(mode: str, server: BenchServer, poke_interval: float) -> dict[str, Any]:
    """One mode from a clean server: the session appears ``APPEAR_AFTER_MS`` after now."""
    clock = SimulatedClock(server)
    server.reset()
    server.command("epoch")
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    tally = MODES[mode](clock, poke_interval)
    cpu, wall = time.process_time() - cpu_started, time.perf_counter() - wall_started
    stats = server.stats()
    return {
        "mode": mode,
        "poke_interval": poke_interval,
        "requests": stats["requests"],
        "connections": stats["accepts"],
        "task_starts": tally.task_starts,
        "worker_slot_seconds": tally.worker_seconds,
        "triggerer_seconds": tally.triggerer_seconds,
        "cpu_seconds": cpu,
        "real_seconds": wall,
    }


def main(argv: list[str] | None = None) -> None:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description="Worker cost of one wait, measured in this process.")
    parser.add_argument("--poke-interval", type=float, default=5.0)
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    import airflow.sdk  # noqa: F401

    server = control_client(args.control_port)
    write_result(args.out, {"modes": [measure_mode(mode, server, args.poke_interval) for mode in MODES]})


if __name__ == "__main__":
    main()
