"""
The "real triggerer" row's database side, run in a short subprocess with the benchmark's fresh ``AIRFLOW_HOME``
(:mod:`bench.triggerer_row` drives it; Airflow 3.3).

``python -m bench.triggerer_rows defer --dag-id D --contender C --poll-interval P --base-url U --first F
--count K --out FILE`` creates the DAG's run once (as ``airflow dags trigger`` + the scheduler would: Airflow's
own ``create_dagrun`` makes the mapped task's N instances), then puts task instances ``F .. F+K-1`` into the
state a real deferral leaves them in: a ``trigger`` row written as Airflow 3.3's execution API writes it when a
worker reports ``TaskDeferred`` (``classpath`` + the trigger's ``serialize()`` kwargs through serde, stored as
that route stores them), and the instance ``deferred`` with ``trigger_id``, ``next_method`` and ``next_kwargs``.
The trigger objects are built by :mod:`bench.contenders`, so they are those the in-loop capacity benchmark runs.
Running N sensor tasks just to defer them would cost more CPU than the measured triggerer.

It then runs ``Trigger.clean_unused`` (what the triggerer runs every loop) and fails unless every row it wrote
survives it.
"""

from __future__ import annotations

import argparse
import datetime
import json
from typing import Any

from bench.contenders import make_contender
from bench.harness import PLATFORM, VERSION_KEY, write_result

#: The mapped sensor's task id in the benchmark DAG.
TASK_ID = "wait"
#: Sessions appear within this many milliseconds after the server's epoch (the optional "fire" phase).
APPEAR_SPREAD_MS = 5000
RUN_ID = "manual__2026-01-01T00:00:00+00:00"


def session_ids(count: int) -> list[str]:
    """
    The mapped task's session ids, map index order: ``row-<index>-<ms>``, where ``<ms>`` (spread over
    :data:`APPEAR_SPREAD_MS`) is when the benchmark server makes it appear after its epoch; before the epoch,
    every poll is a 404.
    """
    return [f"row-{index:05d}-{index * 7919 % APPEAR_SPREAD_MS}" for index in range(count)]


DAG_TEMPLATE = '''"""The real-triggerer row's DAG (bench.triggerer_row): a deferrable sensor mapped over N sessions."""

import datetime

from airflow.sdk import DAG

SESSION_IDS = {session_ids}

with DAG(
    dag_id={dag_id!r},
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
):
{task}
'''

DEVREV_TASK = """    from airflow_provider_devrev.sensors.devrev import DevRevSessionSensor

    DevRevSessionSensor.partial(
        task_id={task_id!r}, platform={platform!r}, version_key={version_key!r}, deferrable=True, poke_interval={poll!r}
    ).expand(session_id=SESSION_IDS)"""

HTTP_TASK = """    from airflow.providers.http.sensors.http import HttpSensor

    HttpSensor.partial(
        task_id={task_id!r},
        http_conn_id="http_default",
        endpoint="/observability.sessions.get",
        method="GET",
        deferrable=True,
        poke_interval={poll!r},
    ).expand(
        request_params=[
            {{"platform": {platform!r}, "session_id": sid, "version_key": {version_key!r}}} for sid in SESSION_IDS
        ]
    )"""


def dag_source(dag_id: str, contender: str, count: int, poll_interval: float) -> str:
    """The DAG file: ``contender``'s deferrable sensor mapped over :func:`session_ids` (``count``)."""
    templates = {"devrev": DEVREV_TASK, "http": HTTP_TASK}
    if contender not in templates:
        raise ValueError(f"no real-triggerer DAG for contender {contender!r}; expected one of {', '.join(templates)}")
    task = templates[contender].format(task_id=TASK_ID, platform=PLATFORM, version_key=VERSION_KEY, poll=poll_interval)
    return DAG_TEMPLATE.format(session_ids=json.dumps(session_ids(count)), dag_id=dag_id, task=task)


def defer(args: argparse.Namespace) -> dict[str, Any]:
    """Create the run if needed; defer task instances ``first .. first + count - 1``; check clean_unused keeps them."""
    from airflow.models.dagbag import DBDagBag
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import Trigger
    from airflow.sdk.serde import serialize
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from sqlalchemy import func, select

    contender = make_contender(args.contender, poll_interval=args.poll_interval, base_url=args.base_url)
    ids = session_ids(args.first + args.count)
    with create_session() as session:
        run = session.scalar(select(DagRun).where(DagRun.dag_id == args.dag_id, DagRun.run_id == RUN_ID))
        if run is None:
            dag = DBDagBag().get_latest_version_of_dag(args.dag_id, session=session)
            if dag is None:
                raise SystemExit(f"DAG {args.dag_id!r} is not serialized in this AIRFLOW_HOME")
            now = datetime.datetime.now(datetime.UTC)
            logical = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
            run = dag.create_dagrun(
                run_id=RUN_ID,
                logical_date=logical,
                data_interval=(logical, logical),
                run_after=now,
                run_type=DagRunType.MANUAL,
                triggered_by=DagRunTriggeredByType.CLI,
                state=DagRunState.RUNNING,
                start_date=now,
                session=session,
            )
            session.flush()
        instances = session.scalars(
            select(TaskInstance)
            .where(
                TaskInstance.dag_id == args.dag_id,
                TaskInstance.run_id == RUN_ID,
                TaskInstance.task_id == TASK_ID,
                TaskInstance.map_index >= args.first,
                TaskInstance.map_index < args.first + args.count,
            )
            .order_by(TaskInstance.map_index)
        ).all()
        if len(instances) != args.count:
            raise SystemExit(f"expected {args.count} mapped task instances from {args.first}, found {len(instances)}")
        now = datetime.datetime.now(datetime.UTC)
        for ti in instances:
            classpath, kwargs = contender.prepare(ids[ti.map_index]).serialize()
            # As the execution API's TIDeferredStatePayload branch stores it: the worker sends the kwargs
            # through serde, and a dict is stored as its JSON (``Trigger._decrypt_kwargs`` reads both forms).
            row = Trigger(classpath=classpath, kwargs={}, queue=None, team_name=None)
            row.encrypted_kwargs = json.dumps(serialize(kwargs))
            session.add(row)
            session.flush()
            ti.state = TaskInstanceState.DEFERRED
            ti.trigger_id = row.id
            ti.next_method = "execute_complete"
            ti.next_kwargs = serialize({})
            ti.trigger_timeout = None
            ti.try_number = max(ti.try_number or 0, 1)
            ti.start_date = ti.start_date or now
            ti.queued_dttm = ti.queued_dttm or now
        session.commit()
        before = session.scalar(select(func.count(Trigger.id))) or 0
        Trigger.clean_unused(session=session)
        session.commit()
        after = session.scalar(select(func.count(Trigger.id))) or 0
        deferred = session.scalar(
            select(func.count(TaskInstance.id)).where(
                TaskInstance.dag_id == args.dag_id, TaskInstance.state == TaskInstanceState.DEFERRED
            )
        )
    if after != before:
        raise SystemExit(f"Trigger.clean_unused deleted {before - after} of the {before} trigger rows")
    return {"triggers": after, "deferred": deferred, "classpath": classpath}


def main(argv: list[str] | None = None) -> None:
    """Command line: ``defer`` (see the module's docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("action", choices=["defer"])
    parser.add_argument("--dag-id", required=True)
    parser.add_argument("--contender", required=True)
    parser.add_argument("--poll-interval", type=float, required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--first", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    write_result(args.out, defer(args))


if __name__ == "__main__":
    main()
