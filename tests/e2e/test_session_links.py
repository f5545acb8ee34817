"""
End to end on every leg: a real run of each task with the "DevRev session" link keeps its address, and Airflow
serves it the way its UI asks for it (the DAG as the scheduler stored it, ``get_extra_links``): on 2.11 the
webserver's copy of the task calls the provider's link, registered in provider info; on 3.x the API server reads
what the worker stored when the task ended.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_devrev.links import SESSION_URL_XCOM_KEY
from tests.e2e.airflow_helpers import load_dag, task_states

pytestmark = pytest.mark.e2e

DAG_ID = "devrev_e2e_links"
LINK = "DevRev session"
TEMPLATE = "https://devrev.example.com/sessions/{session_id}?platform={platform}&app={version_key}"
#: The DAG's ids, URL-quoted: "links-mobile/1", "links-web#1", "com.acme.shop@5.2.0 (beta)".
MOBILE_URL = (
    "https://devrev.example.com/sessions/links-mobile%2F1?platform=android&app=com.acme.shop%405.2.0%20%28beta%29"
)
WEB_URL = "https://devrev.example.com/sessions/links-web%231?platform=web&app=com.acme.shop%405.2.0%20%28beta%29"


#: The DAG's sessions (its constants, not imported: a deployment test must not parse DAGs in its own process).
MOBILE, WEB, VERSION_KEY, RECORDINGS = "links-mobile/1", "links-web#1", "com.acme.shop@5.2.0 (beta)", ["rec-1", "rec-2"]


def add_sessions(sim: Any) -> None:
    """The sessions the DAG fetches and waits for, in ``sim``."""
    mobile = sim.make_session("mobile", platform="android", session_id=MOBILE)
    sim.add_session({**mobile, "recording_ids": RECORDINGS}, version_key=VERSION_KEY)
    web = sim.make_session("web", platform="web", session_id=WEB)
    sim.add_session({**web, "tab_ids": ["tab-1"]}, version_key=VERSION_KEY)


def served_links(run: Any) -> dict[str, str | None]:
    """``task[map_index] -> the button's address``, as Airflow's UI gets it, for every task instance of ``run``."""
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session

    stored = SerializedDagModel.get_dag(DAG_ID)
    assert stored is not None
    links: dict[str, str | None] = {}
    with create_session() as session:
        for ti in run.get_task_instances(session=session):
            task = stored.get_task(ti.task_id)
            assert LINK in task.extra_links, ti.task_id
            name = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
            links[name] = task.get_extra_links(ti, LINK) or None
    return links


def kept_urls(run: Any) -> dict[str, Any]:
    """The ``devrev_session_url`` XCom of every task instance that has one (``""``: no link)."""
    from airflow.utils.session import create_session

    try:
        from airflow.models.xcom import XComModel
    except ImportError:  # Airflow 2.11
        from airflow.models.xcom import XCom

        with create_session() as session:
            tis = [(ti.task_id, ti.map_index) for ti in run.get_task_instances(session=session)]
        where = {"dag_id": DAG_ID, "run_id": run.run_id, "key": SESSION_URL_XCOM_KEY}
        kept = {(t, m): XCom.get_one(task_id=t, map_index=m, **where) for t, m in tis}
    else:
        query = XComModel.get_many(run_id=run.run_id, dag_ids=DAG_ID, key=SESSION_URL_XCOM_KEY)
        with create_session() as session:
            # get_many returns a Query on Airflow 3.0, a select() from 3.1 on.
            rows = query.with_session(session).all() if hasattr(query, "with_session") else list(session.scalars(query))
            kept = {(r.task_id, r.map_index): XComModel.deserialize_value(r) for r in rows}
    return {(t if m < 0 else f"{t}[{m}]"): value for (t, m), value in kept.items() if value is not None}


def test_every_task_with_the_link_keeps_its_address_and_airflow_serves_it(devrev_simulator, airflow_db, monkeypatch):
    sim = devrev_simulator
    monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", sim.connection_json(session_url_template=TEMPLATE))
    add_sessions(sim)

    run = load_dag(DAG_ID).test()

    states = task_states(run)
    assert set(states.values()) == {"success"}, states
    expected = {
        "get": MOBILE_URL,
        "wait_poke": WEB_URL,
        "wait_reschedule": WEB_URL,
        "wait_deferrable": WEB_URL,
        "recordings[0]": MOBILE_URL,
        "recordings[1]": MOBILE_URL,
        "web_recording": WEB_URL,
    }
    # A mobile recording told no platform cannot fill {platform}: no button, and the task still succeeded.
    assert kept_urls(run) == {**expected, "no_platform": ""}
    assert served_links(run) == {**expected, "no_platform": None}


def test_without_the_extra_no_task_has_a_link(devrev_simulator, airflow_db):
    add_sessions(devrev_simulator)

    run = load_dag(DAG_ID).test()

    assert set(task_states(run).values()) == {"success"}
    assert set(kept_urls(run).values()) == {""}
    assert set(served_links(run).values()) == {None}


def test_a_bad_template_costs_only_the_link(devrev_simulator, airflow_db, monkeypatch):
    sim = devrev_simulator
    monkeypatch.setenv(
        "AIRFLOW_CONN_DEVREV_DEFAULT", sim.connection_json(session_url_template="https://x.example/{id}")
    )
    add_sessions(sim)

    run = load_dag(DAG_ID).test()

    assert set(task_states(run).values()) == {"success"}
    assert set(kept_urls(run).values()) == {""}
    assert set(served_links(run).values()) == {None}
