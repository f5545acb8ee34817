"""Parsing DAGs and reading a finished ``dag.test()`` run back from Airflow's metadata DB, on 2.11 and 3.x."""

from __future__ import annotations

import os
from typing import Any


def dag_bag(folder: str | None = None) -> Any:
    """Parse a dags folder the way the dag processor does (examples are off in the test config)."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2.11
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
    return DagBag(dag_folder=folder or os.environ["AIRFLOW__CORE__DAGS_FOLDER"])


def load_dag(dag_id: str) -> Any:
    """Parse the dags folder and return one DAG, failing on any import error."""
    bag = dag_bag()
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id]


def task_states(dag_run: Any) -> dict[str, str]:
    """``task_id`` (with ``[map_index]`` for mapped ones) → final state."""
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = dag_run.get_task_instances(session=session)
        return {(ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"): str(ti.state) for ti in tis}


def xcom(dag_run: Any, task_id: str, map_index: int = -1) -> Any:
    """The ``return_value`` XCom of one task instance of ``dag_run``; exactly one must exist."""
    from airflow.utils.session import create_session

    try:
        from airflow.models.xcom import XComModel
    except ImportError:  # Airflow 2.11
        return _xcom_2_11(dag_run, task_id, map_index)

    with create_session() as session:
        query = XComModel.get_many(
            run_id=dag_run.run_id,
            dag_ids=dag_run.dag_id,
            task_ids=task_id,
            map_indexes=map_index,
            key="return_value",
        )
        # get_many returns a Query on Airflow 3.0, a select() from 3.1 on.
        rows = query.with_session(session).all() if hasattr(query, "with_session") else list(session.scalars(query))
        assert len(rows) == 1, f"expected one XCom from {task_id}, got {len(rows)}"
        return XComModel.deserialize_value(rows[0])


def _xcom_2_11(dag_run: Any, task_id: str, map_index: int) -> Any:
    from airflow.models.xcom import XCom
    from airflow.utils.session import create_session

    where = {"run_id": dag_run.run_id, "task_id": task_id, "map_index": map_index}
    with create_session() as session:
        count = XCom.get_many(
            key="return_value",
            dag_ids=dag_run.dag_id,
            task_ids=task_id,
            map_indexes=map_index,
            run_id=dag_run.run_id,
            session=session,
        ).count()
        assert count == 1, f"expected one XCom from {task_id}, got {count}"
        return XCom.get_one(dag_id=dag_run.dag_id, key="return_value", session=session, **where)
