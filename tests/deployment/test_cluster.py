"""
The distributed deployment (``cluster.py``): PostgreSQL, the CeleryExecutor on Redis, two triggerers, two
Celery workers and an S3 object store, all real servers on 127.0.0.1, the DevRev connection in the metadata DB.

One cluster serves the module's scenarios, in this order (the last one stops Airflow to read every store):

1. Triggerer failover under load: 44 mapped deferrable ``DevRevSessionSensor`` tasks spread over both
   triggerers; the one holding more is SIGKILLed while the sessions appear at random over the next minute.
2. Watcher failover (run first): the triage example's ``DevRevNewSessionsTrigger`` behind an ``AssetWatcher``;
   its triggerer is SIGKILLed as a burst of 5 crash sessions is being fired, one more appears during the
   outage; then the new holder is stalled with SIGSTOP past the health threshold (a session appears
   meanwhile) and resumed with SIGCONT. Each crash session's effect (its report, keyed by session id) exists
   once; repeated asset events and triage runs are counted.
4. Token rotation in the metadata DB: 10 deferrable sensors wait; the connection is replaced through
   ``airflow connections`` and the old token revoked; the sessions appear only after that; all succeed.
3. Export to object storage across workers: the crash-export example writes ``s3://`` objects from one
   worker, its downstream task reads them on the other; a failed export leaves nothing behind.
5. Secret sweep: ``pg_dump``, every Redis value, every file under AIRFLOW_HOME (logs, every component's
   output) and every object: no form of either DevRev token (before and after the rotation) anywhere.

Each test passes alone (``pytest -k``): the sweep runs a deferred sensor itself when no earlier test has.
The watcher scenario runs first, on triggerers that have run no sensor yet: run after the failover and
rotation scenarios, its watch stopped reporting new sessions (twice; not understood yet, see
docs/distributed.md "Not covered yet").

Run it alone with ``pytest -m deployment -s tests/deployment/test_cluster.py`` (``-s`` shows the figures).
When ``DEVREV_CLUSTER_FIGURES`` names a file, the figures are also written there as JSON.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import signal
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from airflow_provider_devrev.testing import DevRevSimulator, RecordedRequest
from tests.deployment.cluster import (
    BUCKET,
    CLUSTER_DAGS,
    TRIGGERER_HEALTH_CHECK_THRESHOLD,
    Cluster,
    argument,
    cluster_in,
    count_forms,
    files_under,
    monotonic_offset,
    token_forms,
    trigger_arguments,
    utc_seconds,
)
from tests.deployment.harness import (
    TRIAGE_DAG_FILE,
    TRIAGE_DAG_ID,
    airflow_version,
    asset_event_ids,
    triage_env,
    triage_runs,
    wait_for,
)

pytestmark = [
    pytest.mark.deployment,
    pytest.mark.skipif(airflow_version() < (3, 3), reason="the 3.3 leg alone installs Celery, Amazon and moto"),
]

SENSOR_DAG = "devrev_cluster_sensors"
SENSOR_TASK = "wait_for_session"
EXPORT_DAG = "example_devrev_crash_export"
VERSION_KEY = "com.acme.shop@5.2.0"
GET = "/observability.sessions.get"
LIST = "/observability.sessions.list"

#: Sensors waiting at once, and each triggerer's capacity: below the count, so that neither triggerer can
#: hold every trigger and both hold some; four below, so that the survivor can adopt all but four orphans
#: at once (the last ones as soon as its own sensors free slots).
SENSORS = 44
TRIGGERER_CAPACITY = SENSORS - 4
#: The sessions appear at random within this many seconds of the kill.
APPEAR_WITHIN = 60.0
POKE_INTERVAL = 3.0
#: Bounds for each wait, in seconds.
DEFER_TIMEOUT = 300.0
ADOPT_TIMEOUT = TRIGGERER_HEALTH_CHECK_THRESHOLD + 90.0
RUN_TIMEOUT = APPEAR_WITHIN + 240.0
EXPORT_TIMEOUT = 240.0
#: The export's queues: both exports on worker-1, the downstream reader on worker-2.
QUEUES = {"export_android_crashes": "worker-1", "export_ios_crashes": "worker-1", "summarize": "worker-2"}
EXPORT_BASE = f"s3://aws_default@{BUCKET}/devrev"

#: Where the triage example writes one report per crash session (its effect, keyed by session id).
TRIAGE_PREFIX = "triage/"
TRIAGE_REPORTS = f"s3://aws_default@{BUCKET}/{TRIAGE_PREFIX.rstrip('/')}"
#: The watch's poll interval here (the example's default is a minute).
WATCH_INTERVAL = 2.0
#: Bounds for the watcher scenario's waits, in seconds: each triage run is three task processes.
WATCH_START_TIMEOUT = 120.0
TRIAGE_TIMEOUT = 300.0
QUIET_POLLS = 3

FIGURES: dict[str, Any] = {}
#: Every token the module's connection has held (the sweep searches for all of them).
TOKENS: list[str] = []
#: Deferrable sensors waiting through the token rotation (scenario 4).
ROTATION_SENSORS = 10
CONN_ID = "devrev_default"


# -- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim() -> Iterator[DevRevSimulator]:
    """The simulator, with a token holding characters that escaping changes (``\\`` for ``repr`` and JSON,
    ``/``, ``+``, ``=`` for URLs), and
    two sessions per list page so that an export spans pages."""
    token = f"cluster/{secrets.token_hex(12)}+sec\\ret={secrets.token_hex(4)}"
    TOKENS.append(token)
    with DevRevSimulator(token=token, port=0, page_size=2) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, sim: DevRevSimulator) -> Iterator[Cluster]:
    started = time.monotonic()
    env = {
        "DEVREV_CLUSTER_POKE_INTERVAL": str(POKE_INTERVAL),
        "DEVREV_CLUSTER_QUEUES": json.dumps(QUEUES),
        "DEVREV_EXPORT_BASE": EXPORT_BASE,
        "DEVREV_EXAMPLE_TRIAGE_REPORTS": TRIAGE_REPORTS,
        # Unpausing the export DAG makes a run for yesterday at once; with the example's two-hour settle, that
        # run would wait until 02:00 UTC between midnight and two, and the export scenario would time out waiting
        # for it (seen at 01:39 UTC). Without the wait, it finishes at once at any hour, as the scenario expects.
        "DEVREV_EXAMPLE_EXPORT_SETTLE": "0",
        **triage_env(WATCH_INTERVAL),
    }
    home = tmp_path_factory.mktemp("cluster") / "airflow"
    with cluster_in(
        home,
        sim,
        dag_id=SENSOR_DAG,
        dag_files=[CLUSTER_DAGS / f"{SENSOR_DAG}.py", f"{EXPORT_DAG}.py", TRIAGE_DAG_FILE],
        env=env,
    ) as d:
        d.start_cluster(triggerer_capacity=TRIGGERER_CAPACITY)
        FIGURES["cluster_ready_s"] = round(time.monotonic() - started, 1)
        yield d
    if os.environ.get("DEVREV_CLUSTER_FIGURES"):
        Path(os.environ["DEVREV_CLUSTER_FIGURES"]).write_text(json.dumps(FIGURES, indent=2) + "\n")


def not_failed(d: Cluster, dag_id: str, run_id: str) -> None:
    """Fail at once (not at the wait's timeout) when the run has failed."""
    rows = d.query("SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?", dag_id, run_id)
    if rows and rows[0]["state"] == "failed":
        states = d.query(
            "SELECT task_id, map_index, state FROM task_instance WHERE dag_id = ? AND run_id = ?", dag_id, run_id
        )
        raise AssertionError(f"run {run_id} failed: {states}\n{d.tails()}")


def finished(d: Cluster, dag_id: str, run_id: str) -> str | None:
    rows = d.query("SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?", dag_id, run_id)
    state = rows[0]["state"] if rows else None
    return state if state in ("success", "failed") else None


def json_value(value: Any) -> Any:
    while isinstance(value, bytes | str):
        value = json.loads(value)
    return value


# -- 2. watcher failover -------------------------------------------------------------------------------------


def watch_polls(sim: DevRevSimulator, *, after: float) -> list[RecordedRequest]:
    """The watch's answered list requests since ``after`` (the export's lists name an end, the watch's not)."""
    return [
        r
        for r in sim.requests_for(path=LIST)
        if r.status is not None
        and r.time > after
        and isinstance(r.body, dict)
        and r.body.get("is_crash") is True
        and "before" not in (r.body.get("created_at") or {})
    ]


def watcher_holder(d: Cluster) -> str | None:
    """The name of the triggerer holding the watch's trigger, None while nobody does."""
    rows = d.query("SELECT t.triggerer_id FROM trigger t JOIN asset_watcher w ON w.trigger_id = t.id")
    held = {row["triggerer_id"] for row in rows} - {None}
    if len(held) != 1:
        return None
    [job] = held
    return next((name for name, number in d.triggerer_jobs().items() if number == job), None)


def reports(d: Cluster) -> dict[str, dict[str, Any]]:
    """The triage reports written so far, ``session id (from the key) -> report``."""
    return {
        key[len(TRIAGE_PREFIX) :].removesuffix(".json"): json.loads(body)
        for key, body in d.objects().items()
        if key.startswith(TRIAGE_PREFIX)
    }


def triage_settled(d: Cluster) -> bool:
    """No triage run failed, none unfinished, none about to be queued."""
    runs = triage_runs(d)
    failed = [run for run in runs if run.state == "failed"]
    assert not failed, f"triage runs failed: {failed}\n{d.tails()}"
    queued = d.query("SELECT 1 FROM asset_dag_run_queue WHERE target_dag_id = ?", TRIAGE_DAG_ID)
    return not queued and all(run.state == "success" for run in runs)


def add_crash(sim: DevRevSimulator, name: str) -> str:
    """An android crash session of the watched app, created a minute ago; its id."""
    session_id = f"{name}-{secrets.token_hex(4)}"
    created_at = datetime.now(UTC) - timedelta(seconds=60)
    session = sim.make_session(
        "mobile", platform="android", session_id=session_id, created_at=created_at, is_crash=True
    )
    sim.add_session(session, version_key=VERSION_KEY)
    return session_id


def test_watcher_failover(cluster: Cluster, sim: DevRevSimulator) -> None:
    d = cluster
    started = time.monotonic()
    d.replace_killed_triggerers()
    existing = {r.session_id for r in sim.requests_for(path=GET) if r.session_id} | set(reports(d))

    def effects_of(expected: list[str], what: str) -> None:
        wait_for(
            what,
            lambda: set(expected) <= set(reports(d)) and triage_settled(d),
            timeout=TRIAGE_TIMEOUT,
            deployment=d,
        )

    # 1. The watch starts (its first poll records what exists and fires nothing) on one of two triggerers.
    unpaused_at = time.monotonic()
    d.cli("dags", "unpause", TRIAGE_DAG_ID)
    wait_for(
        "the watch's first poll", lambda: watch_polls(sim, after=unpaused_at), timeout=WATCH_START_TIMEOUT, deployment=d
    )
    first_holder = wait_for("a triggerer to hold the watch", lambda: watcher_holder(d), timeout=60, deployment=d)

    # 2. A burst of 5 crash sessions; the holder is SIGKILLed as soon as the first of them has become an asset
    # event: the other four are still queued in the dead trigger (5 s apart), its saved position counts none.
    burst = [add_crash(sim, f"burst-{i}") for i in range(5)]
    wait_for(
        "the first event of the burst",
        lambda: set(asset_event_ids(d)) & set(burst),
        timeout=TRIAGE_TIMEOUT,
        deployment=d,
    )
    fired_before_kill = len(set(asset_event_ids(d)) & set(burst))
    killed_at = d.component(first_holder).kill()
    while_down = add_crash(sim, "while-down")
    second_holder = wait_for(
        "the survivor to adopt the watch",
        lambda: (holder := watcher_holder(d)) not in (None, first_holder) and holder,
        timeout=ADOPT_TIMEOUT,
        deployment=d,
    )
    adopted_poll = wait_for(
        "the survivor's first poll", lambda: watch_polls(sim, after=killed_at), timeout=ADOPT_TIMEOUT, deployment=d
    )[0]
    # A lone next session releases any event Airflow held back for the next one (see test_event_driven.py).
    after_kill = add_crash(sim, "after-kill")
    effects_of([*burst, while_down, after_kill], "every session of the kill phase to be triaged")
    killed_phase_events = Counter(asset_event_ids(d))

    # 3. A stall: a second triggerer again, then the holder is stopped (SIGSTOP) past the health threshold; a
    # session appears meanwhile; the other triggerer adopts the watch and reports it; then SIGCONT.
    d.replace_killed_triggerers()
    stalled = d.component(second_holder)
    stalled.signal(signal.SIGSTOP)
    stopped_at = time.monotonic()
    try:
        during_stall = add_crash(sim, "during-stall")
        third_holder = wait_for(
            "another triggerer to adopt the stalled watch",
            lambda: (holder := watcher_holder(d)) not in (None, second_holder) and holder,
            timeout=ADOPT_TIMEOUT,
            deployment=d,
        )
        effects_of([during_stall], "the session of the stall to be triaged")
    finally:
        stalled.signal(signal.SIGCONT)
    resumed_at = time.monotonic()
    # The stale triggerer runs again (a heartbeat since SIGCONT) or has exited; either way it finds the watch
    # is no longer its own. Whatever it does meanwhile (fire again, save an older position) happens below.
    stale_job = d.triggerer_jobs()[second_holder]
    wait_for(
        "the stale triggerer to run again",
        lambda: (
            stalled.popen.poll() is not None
            or d.query("SELECT 1 FROM job WHERE id = ? AND latest_heartbeat > now() - interval '5 seconds'", stale_job)
        ),
        timeout=ADOPT_TIMEOUT,
        deployment=d,
    )
    after_stall = add_crash(sim, "after-stall")
    expected = [*burst, while_down, after_kill, during_stall, after_stall]
    effects_of([after_stall], "the session after the stall to be triaged")
    quiet_from = time.monotonic()
    wait_for(
        f"{QUIET_POLLS} more polls of the watch",
        lambda: len(watch_polls(sim, after=quiet_from)) >= QUIET_POLLS and triage_settled(d),
        timeout=TRIAGE_TIMEOUT,
        deployment=d,
    )
    assert watcher_holder(d) == third_holder, "the stale triggerer took the watch back"
    d.cli("dags", "pause", TRIAGE_DAG_ID)

    # Each crash session's effect exactly once: one report per session id, for exactly the sessions that
    # appeared after the watch started, each reporting its own session.
    written = reports(d)
    assert sorted(written) == sorted(expected), f"reports: {sorted(written)}\nexpected: {sorted(expected)}"
    assert all(report["session_id"] == sid for sid, report in written.items())
    assert not set(written) & existing
    # Nothing lost: every session fired and was triaged by a successful run; what repeated is counted.
    events = Counter(asset_event_ids(d))
    runs = Counter(sid for run in triage_runs(d) if run.state == "success" for sid in run.triaged)
    assert set(events) == set(expected), events
    assert set(runs) == set(expected), runs
    puts = {sid: len(uploads(s3_requests(d, f"{TRIAGE_PREFIX}{sid}.json"))) for sid in expected}
    assert all(n >= 1 for n in puts.values()), puts

    FIGURES["watcher"] = {
        "crash_sessions": len(expected),
        "burst": len(burst),
        "burst_events_before_kill": fired_before_kill,
        "kill_to_adopted_poll_s": round(adopted_poll.time - killed_at, 1),
        "stall_s": round(resumed_at - stopped_at, 1),
        "health_check_threshold_s": TRIGGERER_HEALTH_CHECK_THRESHOLD,
        "asset_events": sum(events.values()),
        "asset_events_after_kill_phase": sum(killed_phase_events.values()),
        "sessions_fired_more_than_once": sorted(sid.rsplit("-", 1)[0] for sid, n in events.items() if n > 1),
        "triage_runs_per_session_max": max(runs.values()),
        "sessions_triaged_more_than_once": len([n for n in runs.values() if n > 1]),
        "reports_per_session": 1,
        "report_writes_max": max(puts.values()),
        "stale_triggerer_exited": stalled.popen.poll() is not None,
        "wall_time_s": round(time.monotonic() - started, 1),
    }
    print("\nwatcher figures:", json.dumps(FIGURES["watcher"], indent=2))


# -- 1. triggerer failover under load ------------------------------------------------------------------------


def sensor_triggers(d: Cluster, run_id: str) -> dict[int, dict[str, Any]]:
    """``map index -> {trigger_id, trigger_timeout, triggerer_id, session_id, end_time}`` of the run's
    deferred sensors."""
    rows = d.query(
        "SELECT ti.map_index, ti.trigger_id, ti.trigger_timeout, t.triggerer_id, t.kwargs "
        "FROM task_instance ti JOIN trigger t ON t.id = ti.trigger_id "
        "WHERE ti.dag_id = ? AND ti.run_id = ? AND ti.task_id = ? AND ti.state = 'deferred'",
        SENSOR_DAG,
        run_id,
        SENSOR_TASK,
    )
    triggers = {}
    for row in rows:
        arguments = trigger_arguments(d, row["kwargs"])
        triggers[row["map_index"]] = {
            "trigger_id": row["trigger_id"],
            "trigger_timeout": utc_seconds(row["trigger_timeout"]),
            "triggerer_id": row["triggerer_id"],
            "session_id": argument(arguments, "session_id"),
            "end_time": argument(arguments, "end_time"),
        }
    return triggers


def test_triggerer_failover_under_load(cluster: Cluster, sim: DevRevSimulator) -> None:
    d = cluster
    d.replace_killed_triggerers()
    started = time.monotonic()
    seed = secrets.randbelow(2**32)
    rng = random.Random(seed)
    ids = [f"load-{i:02d}-{secrets.token_hex(4)}" for i in range(SENSORS)]
    run_id = "load-" + secrets.token_hex(4)
    d.cli("dags", "unpause", SENSOR_DAG)
    d.cli("dags", "trigger", SENSOR_DAG, "--run-id", run_id, "--conf", json.dumps({"session_ids": ids}))

    # 1. Every sensor checked once on a worker and deferred; every trigger is held by a triggerer and has
    # polled DevRev at least once (so both triggerers are past their first connection lookup).
    def polled(sid: str) -> int:
        return len([r for r in sim.requests_for(path=GET, session_id=sid) if r.status is not None])

    before: dict[int, dict[str, Any]] = {}

    def all_deferred_and_polled() -> bool:
        not_failed(d, SENSOR_DAG, run_id)
        before.clear()
        before.update(sensor_triggers(d, run_id))
        held = [t for t in before.values() if t["triggerer_id"] is not None]
        return len(held) == SENSORS and all(polled(sid) >= 2 for sid in ids)

    wait_for(
        "every sensor to defer and its trigger to poll", all_deferred_and_polled, timeout=DEFER_TIMEOUT, deployment=d
    )
    deferred_at = time.monotonic()
    live = [c.name for c in d.live_triggerers()]
    jobs = {name: job for name, job in d.triggerer_jobs().items() if name in live}
    holdings = Counter(t["triggerer_id"] for t in before.values())
    assert set(holdings) == set(jobs.values()), f"not spread over both triggerers: {holdings} {jobs}"
    assert all(0 < n <= TRIGGERER_CAPACITY for n in holdings.values()), holdings
    assert {t["session_id"] for t in before.values()} == set(ids)
    victim_job, victim_held = holdings.most_common(1)[0]
    victim = next(name for name, job in jobs.items() if job == victim_job)
    survivor_job = next(job for job in jobs.values() if job != victim_job)
    orphans = {t["session_id"] for t in before.values() if t["triggerer_id"] == victim_job}

    # 2. The sessions appear at random within the next minute; kill the triggerer holding more.
    delays = {sid: rng.uniform(1.0, APPEAR_WITHIN) for sid in ids}
    sessions = {
        sid: sim.add_session(
            sim.make_session("mobile", platform="android", session_id=sid, is_crash=True),
            version_key=VERSION_KEY,
            appear_after_seconds=delays[sid],
        )
        for sid in ids
    }
    killed_at = d.component(victim).kill()

    # 3. The survivor adopts the orphans: the first poll of an orphan after the kill is the survivor's.
    first_adopted: RecordedRequest = wait_for(
        "the survivor to poll an adopted trigger",
        lambda: next((r for r in sim.requests_for(path=GET) if r.session_id in orphans and r.time > killed_at), None),
        timeout=ADOPT_TIMEOUT,
        deployment=d,
    )
    after: dict[int, dict[str, Any]] = {}

    def none_left_with_the_dead() -> bool:
        not_failed(d, SENSOR_DAG, run_id)
        after.clear()
        after.update(sensor_triggers(d, run_id))
        return all(t["triggerer_id"] == survivor_job for t in after.values())

    wait_for(
        "every remaining trigger to move to the survivor", none_left_with_the_dead, timeout=ADOPT_TIMEOUT, deployment=d
    )
    adopted_at = time.monotonic()
    # Deadlines are the original ones: the task instance's and the trigger's own (its end_time).
    for index, now in after.items():
        then = before[index]
        assert now["trigger_id"] == then["trigger_id"], index
        assert now["trigger_timeout"] == then["trigger_timeout"], index
        assert now["end_time"] == then["end_time"] is not None, index

    # 4. Every sensor succeeds once, with exactly the session DevRev served.
    state = wait_for(
        f"run {run_id} to finish", lambda: finished(d, SENSOR_DAG, run_id), timeout=RUN_TIMEOUT, deployment=d
    )
    done_at = time.monotonic()
    tis = d.query(
        "SELECT map_index, state, try_number, end_date FROM task_instance "
        "WHERE dag_id = ? AND run_id = ? AND task_id = ?",
        SENSOR_DAG,
        run_id,
        SENSOR_TASK,
    )
    assert state == "success", f"{Counter(ti['state'] for ti in tis)}\n{d.tails()}"
    assert len(tis) == SENSORS
    assert {(ti["state"], ti["try_number"]) for ti in tis} == {("success", 1)}
    xcoms = sensor_xcoms(d, run_id)
    assert {xcoms[index]["session_id"] for index in range(SENSORS)} == set(ids)
    for index in range(SENSORS):
        assert xcoms[index] == sessions[xcoms[index]["session_id"]]

    # 5. No session polled after its sensor succeeded: the last request for each is the one that found it;
    # an earlier find can only be the dead triggerer's (answered, but its event never fired).
    offset = monotonic_offset()
    ended = {json_value(xcoms[ti["map_index"]])["session_id"]: utc_seconds(ti["end_date"]) for ti in tis}
    per_session = {sid: sim.requests_for(path=GET, session_id=sid) for sid in ids}
    for sid, requests in per_session.items():
        assert requests[-1].status == 200, (sid, [r.status for r in requests])
        assert all(r.time <= killed_at for r in requests[:-1] if r.status == 200), sid
        end = ended[sid]
        assert end is not None, sid
        assert requests[-1].time + offset <= end + 1.0, sid
    late = [r for r in sim.requests_for(path=GET) if r.session_id in ids and r.time + offset > max(ended.values()) + 1]
    assert not late, f"polled after every sensor had succeeded: {late}"

    requests = [len(rs) for rs in per_session.values()]
    FIGURES["failover"] = {
        "sensors": SENSORS,
        "triggerer_capacity": TRIGGERER_CAPACITY,
        "held_before_kill": sorted(holdings.values(), reverse=True),
        "orphans": victim_held,
        "seed": seed,
        "deferred_after_s": round(deferred_at - started, 1),
        "adoption_s": round(first_adopted.time - killed_at, 1),
        "all_moved_s": round(adopted_at - killed_at, 1),
        "run_after_kill_s": round(done_at - killed_at, 1),
        "requests_per_session_mean": round(sum(requests) / len(requests), 1),
        "requests_per_session_max": max(requests),
        "health_check_threshold_s": TRIGGERER_HEALTH_CHECK_THRESHOLD,
        "wall_time_s": round(time.monotonic() - started, 1),
    }
    print("\nfailover figures:", json.dumps(FIGURES["failover"], indent=2))


# -- 4. token rotation in the metadata DB -------------------------------------------------------------------


def run_deferred_sensors(
    d: Cluster, sim: DevRevSimulator, prefix: str, count: int, *, while_waiting: Any = None
) -> tuple[str, dict[str, dict[str, Any]]]:
    """
    A run of ``count`` sensors whose sessions exist only once every sensor has deferred and its trigger has
    polled DevRev twice (deterministic: nothing appears on a timer). ``while_waiting()`` runs at that point,
    before the sessions are uploaded. Return the run id and the sessions served, by id, once it succeeded.
    """
    ids = [f"{prefix}-{i:02d}-{secrets.token_hex(4)}" for i in range(count)]
    made = {sid: sim.make_session("mobile", platform="android", session_id=sid, is_crash=True) for sid in ids}
    run_id = f"{prefix}-{secrets.token_hex(4)}"
    d.cli("dags", "unpause", SENSOR_DAG)
    d.cli("dags", "trigger", SENSOR_DAG, "--run-id", run_id, "--conf", json.dumps({"session_ids": ids}))

    def answered(sid: str) -> int:
        return len([r for r in sim.requests_for(path=GET, session_id=sid) if r.status is not None])

    def deferred_and_polled() -> bool:
        not_failed(d, SENSOR_DAG, run_id)
        held = [t for t in sensor_triggers(d, run_id).values() if t["triggerer_id"] is not None]
        return len(held) == count and all(answered(sid) >= 2 for sid in ids)

    wait_for(f"{count} sensors to defer and poll", deferred_and_polled, timeout=DEFER_TIMEOUT, deployment=d)
    if while_waiting is not None:
        while_waiting()
    sessions = {sid: sim.add_session(session, version_key=VERSION_KEY) for sid, session in made.items()}
    state = wait_for(
        f"run {run_id} to finish", lambda: finished(d, SENSOR_DAG, run_id), timeout=RUN_TIMEOUT, deployment=d
    )
    assert state == "success", f"run {run_id} {state}\n{d.tails()}"
    return run_id, sessions


def sensor_xcoms(d: Cluster, run_id: str) -> dict[int, Any]:
    """``map index -> returned session`` of the run's sensors."""
    return {
        row["map_index"]: json_value(row["value"])
        for row in d.query(
            "SELECT map_index, value FROM xcom "
            "WHERE dag_id = ? AND run_id = ? AND task_id = ? AND key = 'return_value'",
            SENSOR_DAG,
            run_id,
            SENSOR_TASK,
        )
    }


def test_token_rotation_in_the_metadata_db(cluster: Cluster, sim: DevRevSimulator) -> None:
    d = cluster
    started = time.monotonic()
    new_token = f"rotated/{secrets.token_hex(12)}+new\\key={secrets.token_hex(4)}"
    TOKENS.append(new_token)
    rotated: list[float] = []

    def rotate() -> None:
        # As a secrets policy does it: the connection in the metadata DB first, then the old token revoked.
        # --conn-password: Airflow masks it in the command line it records in its log table.
        d.cli("connections", "delete", CONN_ID)
        d.cli(
            "connections", "add", CONN_ID, "--conn-type", "devrev", "--conn-host", sim.url, "--conn-password", new_token
        )
        sim.rotate_token(new_token)
        rotated.append(time.monotonic())

    run_id, sessions = run_deferred_sensors(d, sim, "rotate", ROTATION_SENSORS, while_waiting=rotate)
    done_at = time.monotonic()
    [rotated_at] = rotated
    tis = d.query(
        "SELECT state, try_number FROM task_instance WHERE dag_id = ? AND run_id = ? AND task_id = ?",
        SENSOR_DAG,
        run_id,
        SENSOR_TASK,
    )
    assert len(tis) == ROTATION_SENSORS
    assert {(ti["state"], ti["try_number"]) for ti in tis} == {("success", 1)}, tis
    xcoms = sensor_xcoms(d, run_id)
    assert sorted(x["session_id"] for x in xcoms.values()) == sorted(sessions)
    for returned in xcoms.values():
        assert returned == sessions[returned["session_id"]]

    # Every request attributed to a token: the old one until the rotation (and the one 401 it met, at most
    # once per trigger: copies of a hook share what one of them re-read), the new one for everything after.
    old, new = {r.token for r in sim.requests_for(path=GET) if r.time < rotated_at - 1} - {None}, None
    unauthorized = 0
    for sid in sessions:
        requests = sim.requests_for(path=GET, session_id=sid)
        refused = [i for i, r in enumerate(requests) if r.status == 401]
        assert len(refused) <= 1, (sid, [(r.token, r.status) for r in requests])
        unauthorized += len(refused)
        first_new = next(i for i, r in enumerate(requests) if r.time >= rotated_at and r.status != 401)
        before, after = requests[:first_new], requests[first_new:]
        assert {r.token for r in before} <= old, (sid, [(r.token, r.status) for r in requests])
        new = new or after[0].token
        assert {r.token for r in after} == {new}, (sid, [(r.token, r.status) for r in requests])
        assert after[-1].status == 200, (sid, [r.status for r in after])
        if refused:
            # The resend followed the 401 at once, with the new token.
            assert requests[refused[0] + 1].token == new, sid
            assert requests[refused[0] + 1].time - requests[refused[0]].time < 5, sid
    assert new is not None
    assert new not in old
    assert unauthorized >= 1, "no trigger met the revoked token: the rotation happened after the waits"

    FIGURES["rotation"] = {
        "sensors": ROTATION_SENSORS,
        "succeeded": len(tis),
        "unauthorized_answers": unauthorized,
        "rotation_to_run_success_s": round(done_at - rotated_at, 1),
        "wall_time_s": round(time.monotonic() - started, 1),
    }
    print("\nrotation figures:", json.dumps(FIGURES["rotation"], indent=2))


# -- 3. export to object storage across workers --------------------------------------------------------------


def export_key(day: str, platform: str) -> str:
    return f"devrev/{day}/{platform}-crash-sessions.jsonl"


def add_crashes(sim: DevRevSimulator, day: datetime, count: int) -> None:
    """``count`` crash sessions per mobile platform created on ``day`` (UTC)."""
    for platform in ("android", "ios"):
        for i in range(count):
            session = sim.make_session(
                "mobile",
                platform=platform,
                session_id=f"export-{platform}-{secrets.token_hex(4)}",
                created_at=day + timedelta(hours=1 + i),
                is_crash=True,
            )
            sim.add_session(session, version_key=VERSION_KEY)


def s3_requests(d: Cluster, key: str) -> list[str]:
    """The S3 server's access-log lines for ``key`` (``"PUT /bucket/key?partNumber=1&uploadId=..."``)."""
    marker = f"/{BUCKET}/{key}"
    # The server colours the lines of non-2xx answers (ANSI escapes) even into a file.
    text = re.sub(r"\x1b\[[0-9;]*m", "", d.component("s3").output.read_text(errors="replace"))
    return [line.split('"')[1] for line in text.splitlines() if marker in line and line.count('"') >= 2]


def uploads(requests: list[str]) -> list[str]:
    """The requests that carried data: a PUT of the object or of one part of a multipart upload."""
    return [r for r in requests if r.startswith("PUT ") and ("?" not in r.split()[1] or "partNumber=" in r)]


def backfill(d: Cluster, day: datetime) -> str:
    """Backfill the export DAG for the data interval starting at ``day``; return the run's id.

    A backfill, not ``dags trigger --logical-date``: a manual run's data interval follows from when it runs
    (Airflow 3), and the export lists its data interval.
    """
    moment = day.isoformat()
    d.cli("backfill", "create", "--dag-id", EXPORT_DAG, "--from-date", moment, "--to-date", moment)
    [row] = wait_for(
        f"the backfill run of {day:%Y-%m-%d}",
        lambda: d.query("SELECT run_id FROM dag_run WHERE dag_id = ? AND data_interval_start = ?", EXPORT_DAG, day),
        timeout=EXPORT_TIMEOUT,
        deployment=d,
    )
    return str(row["run_id"])


def export_runs_settled(d: Cluster, but: str) -> bool:
    """Every run of the export DAG but ``but`` finished, and its backfill too (one backfill at a time per DAG)."""
    runs = d.query("SELECT run_id, state FROM dag_run WHERE dag_id = ? AND run_id != ?", EXPORT_DAG, but)
    open_backfills = d.query("SELECT id FROM backfill WHERE dag_id = ? AND completed_at IS NULL", EXPORT_DAG)
    return not open_backfills and all(run["state"] in ("success", "failed") for run in runs)


def test_export_across_workers(cluster: Cluster, sim: DevRevSimulator) -> None:
    d = cluster
    started = time.monotonic()
    day_ok, day_failed = datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 5, 31, tzinfo=UTC)
    add_crashes(sim, day_ok, 3)
    add_crashes(sim, day_failed, 5)  # five on a page of two: the failure comes mid-file
    wait_for(
        f"the dag processor to store {EXPORT_DAG}",
        lambda: d.query("SELECT dag_id FROM dag WHERE dag_id = ?", EXPORT_DAG),
        timeout=120,
        deployment=d,
    )
    d.cli("dags", "unpause", EXPORT_DAG)

    # 1. A successful export: written on worker-1, read back by the downstream task on worker-2.
    ok_run = backfill(d, day_ok)
    state = wait_for(
        f"run {ok_run} to finish", lambda: finished(d, EXPORT_DAG, ok_run), timeout=EXPORT_TIMEOUT, deployment=d
    )
    tis = {
        row["task_id"]: row
        for row in d.query(
            "SELECT task_id, state, queue, hostname, try_number FROM task_instance WHERE dag_id = ? AND run_id = ?",
            EXPORT_DAG,
            ok_run,
        )
    }
    assert state == "success", f"{tis}\n{d.tails()}"
    for task_id, worker in QUEUES.items():
        assert (tis[task_id]["queue"], tis[task_id]["hostname"]) == (worker, worker), tis[task_id]
        assert tis[task_id]["try_number"] == 1
    returned = {
        row["task_id"]: json_value(row["value"])
        for row in d.query(
            "SELECT task_id, value FROM xcom WHERE dag_id = ? AND run_id = ? AND key = 'return_value'",
            EXPORT_DAG,
            ok_run,
        )
    }
    objects = d.objects()
    day = day_ok.date().isoformat()
    total = 0
    for platform in ("android", "ios"):
        key = export_key(day, platform)
        exported = returned[f"export_{platform}_crashes"]
        assert exported["path"].endswith(f"{BUCKET}/{key}"), exported
        lines = [json.loads(line) for line in objects[key].decode().splitlines()]
        assert len(lines) == exported["count"] >= 3
        assert all(s["platform"] == platform and s["is_crash"] and s["created_at"].startswith(day) for s in lines)
        # Written once: one upload of the data, no temporary object, no copy.
        assert len(uploads(s3_requests(d, key))) == 1, s3_requests(d, key)
        total += len(lines)
    summary = returned["summarize"]
    assert summary["total"] == total
    # The lineage Airflow collected (hook lineage, as a backend such as OpenLineage reads it): each export's
    # output is its final object, never a temporary one.
    finals = [f"{BUCKET}/{export_key(day, platform)}" for platform in ("android", "ios")]
    for platform, final in zip(("android", "ios"), finals, strict=True):
        lineage = d.lineage(EXPORT_DAG, ok_run, f"export_{platform}_crashes")
        assert lineage is not None, "no lineage recorded for the export"
        assert lineage["outputs"], lineage
        assert all(uri.endswith(final) for uri in lineage["outputs"]), lineage
    assert [path.rsplit(f"{BUCKET}/", 1)[1] for path in summary["files"]] == [
        export_key(day, "android"),
        export_key(day, "ios"),
    ]

    # 2. A failed export: each export's first list page is slow, and while the first is in flight every later
    # list request is made to fail (a final 400). Faults are served in the order they were added, so each
    # export gets a slow first page (written to its file) and then the 400, whenever it starts.
    wait_for(
        "the other export runs to settle", lambda: export_runs_settled(d, ok_run), timeout=EXPORT_TIMEOUT, deployment=d
    )
    before_fault = time.monotonic()
    sim.add_fault("slow", path=LIST, times=2, delay=8.0)
    failed_run = backfill(d, day_failed)
    wait_for(
        "the first list page to be in flight",
        lambda: [r for r in sim.requests_for(path=LIST) if r.time > before_fault and r.status is None],
        timeout=EXPORT_TIMEOUT,
        deployment=d,
    )
    sim.add_fault("status", path=LIST, times=None, status=400, body={"type": "bad_request", "message": "injected"})

    def exports_failed() -> bool:
        rows = d.query(
            "SELECT state FROM task_instance WHERE dag_id = ? AND run_id = ? AND task_id LIKE 'export_%%'",
            EXPORT_DAG,
            failed_run,
        )
        return len(rows) == 2 and all(row["state"] in ("up_for_retry", "failed") for row in rows)

    try:
        wait_for("both exports to fail", exports_failed, timeout=EXPORT_TIMEOUT, deployment=d)
    finally:
        sim.clear_faults()
    failed_day = day_failed.date().isoformat()
    keys = set(d.objects())
    assert not [k for k in keys if k.startswith(f"devrev/{failed_day}/")], keys
    assert not [k for k in keys if "partial" in k or ".tmp" in k], keys
    assert d.pending_uploads() == []
    # Both had written their first page: each upload was started, then aborted, never completed.
    requests = [r for platform in ("android", "ios") for r in s3_requests(d, export_key(failed_day, platform))]
    assert [r for r in requests if r.startswith("DELETE ") and "uploadId=" in r], requests
    assert not [r for r in requests if r.startswith("POST ") and "uploadId=" in r], "an upload was completed"

    FIGURES["export"] = {
        "sessions_exported": total,
        "lineage_outputs": sorted(
            uri.rsplit(f"{BUCKET}/", 1)[-1]
            for platform in ("android", "ios")
            for uri in (d.lineage(EXPORT_DAG, ok_run, f"export_{platform}_crashes") or {}).get("outputs", [])
        ),
        "uploads_per_file": 1,
        "failed_export_objects_left": 0,
        "failed_export_uploads_aborted": len([r for r in requests if r.startswith("DELETE ")]),
        "wall_time_s": round(time.monotonic() - started, 1),
    }
    print("\nexport figures:", json.dumps(FIGURES["export"], indent=2))


# -- 5. secret sweep (last: it stops Airflow) ----------------------------------------------------------------


def test_no_token_in_any_store(cluster: Cluster, sim: DevRevSimulator) -> None:
    d = cluster
    started = time.monotonic()
    # The search finds a token however it would have leaked (each has characters each escaping changes).
    for token in TOKENS:
        leaks = {
            "json": json.dumps({"password": token}).encode(),
            "repr": repr({"password": token}).encode(),
            "url": urlencode({"token": token}).encode(),
        }
        found = count_forms(leaks, token)
        assert {where.split()[0] for where in found} == set(leaks), found
        assert len(set(token_forms(token).values())) == 3  # raw; repr = JSON (\\ doubled); URL = URL with +
    # Something must have used the connection on a worker and in a triggerer: what the earlier scenarios
    # left, or (run alone) a deferred sensor run of its own.
    if not d.query("SELECT 1 FROM task_instance WHERE dag_id = ? AND state = 'success'", SENSOR_DAG):
        run_deferred_sensors(d, sim, "sweep", 2)
    ran = d.query("SELECT DISTINCT hostname FROM task_instance WHERE state = 'success'")
    assert {row["hostname"] for row in ran} & {"worker-1", "worker-2"}, ran

    d.stop_airflow()  # every buffer on disk; the servers stay up to be read whole
    dump = d.dump_db()["pg_dump"]
    redis = d.redis_values()
    files = files_under(d.home)
    objects = d.objects()
    blobs: dict[str, bytes] = {"pg_dump": dump.encode()}
    blobs.update({f"redis {key}": value for key, value in redis.items()})
    blobs.update({f"file {path}": data for path, data in files.items()})
    blobs.update({f"s3 {key}": data for key, data in objects.items()})
    hits = {
        f"token {number}: {where}": n
        for number, token in enumerate(TOKENS, 1)
        for where, n in count_forms(blobs, token).items()
    }
    assert not hits, f"a DevRev token is in: {hits}"

    # The sweep read what matters: the encrypted connection, the task and trigger logs, every component's
    # output, the broker's keys.
    assert "COPY public.connection" in dump
    assert "devrev_default" in dump
    assert [p for p in files if p.startswith("logs/dag_id=") and ".trigger." in p], "no trigger log"
    assert [p for p in files if p.startswith(f"logs/dag_id={SENSOR_DAG}/")], "no task log"
    for component in d.components:
        assert f"components/{component.name}.out" in files, component.name
    assert redis, "no key in Redis"
    FIGURES["secret_sweep"] = {
        "tokens": len(TOKENS),
        "token_forms": len(set(token_forms(TOKENS[0]).values())),
        "token_hits": 0,
        "places_searched": len(blobs),
        "bytes_searched": sum(len(b) for b in blobs.values()),
        "redis_keys": len(redis),
        "files": len(files),
        "wall_time_s": round(time.monotonic() - started, 1),
    }
    print("\nsecret sweep figures:", json.dumps(FIGURES["secret_sweep"], indent=2))
