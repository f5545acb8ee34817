"""ListSessionsOperator's own logic, against the simulator (the full DAG runs are in tests/e2e)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pendulum
import pytest

from airflow_provider_devrev._compat import AirflowFailException
from airflow_provider_devrev.exceptions import DevRevInvalidInputError
from airflow_provider_devrev.operators.devrev import ListSessionsOperator, write_json_lines

VERSION = "com.example.app@1.0.0"
DAY = datetime(2026, 3, 1, tzinfo=UTC)
LIST = "/observability.sessions.list"

pytestmark = pytest.mark.devrev_simulator(seed_data=False, page_size=7)


def add(sim, session_id, moment, *, crash=True, platform="android"):
    session = sim.make_session("mobile", platform=platform, session_id=session_id, created_at=moment, is_crash=crash)
    return sim.add_session(session, version_key=VERSION)


def interval(start, end):
    return {"data_interval_start": pendulum.instance(start), "data_interval_end": pendulum.instance(end)}


def test_defaults_to_the_data_interval_half_open(devrev_simulator):
    sim = devrev_simulator
    add(sim, "at-start", DAY)
    add(sim, "inside", DAY + timedelta(hours=5))
    add(sim, "at-end", DAY + timedelta(days=1))
    add(sim, "before", DAY - timedelta(microseconds=1000))
    op = ListSessionsOperator(task_id="list", platform="android", version_key=VERSION)

    result = op.execute(interval(DAY, DAY + timedelta(days=1)))

    assert [s["session_id"] for s in result] == ["at-start", "inside"]
    body = sim.requests_for(path=LIST)[0].body
    assert body["created_at"] == {
        "type": "range",
        "after": "2026-03-01T00:00:00.000000Z",
        # DevRev's before is inclusive: the last nanosecond before the interval's end.
        "before": "2026-03-01T23:59:59.999999999Z",
    }


def test_filters_and_explicit_bounds_override_the_interval(devrev_simulator):
    sim = devrev_simulator
    add(sim, "crash-early", DAY + timedelta(hours=1))
    add(sim, "ok-early", DAY + timedelta(hours=1, minutes=1), crash=False)
    add(sim, "crash-late", DAY + timedelta(hours=20))
    op = ListSessionsOperator(
        task_id="list",
        platform="android",
        version_key=VERSION,
        filters={"is_crash": True},
        created_before="2026-03-01T12:00:00+00:00",
    )

    result = op.execute(interval(DAY, DAY + timedelta(days=1)))

    assert [s["session_id"] for s in result] == ["crash-early"]


def test_more_sessions_than_the_xcom_limit_fail_before_fetching_the_rest(devrev_simulator):
    sim = devrev_simulator
    for number in range(30):
        add(sim, f"s{number:02d}", DAY + timedelta(minutes=number))
    op = ListSessionsOperator(task_id="list", platform="android", version_key=VERSION, max_xcom_sessions=10)

    with pytest.raises(AirflowFailException, match=r"max_xcom_sessions=10.*output_path"):
        op.execute(interval(DAY, DAY + timedelta(days=1)))

    # 10 sessions fit in 2 pages of 7; the 11th is on the 2nd page, so the 3rd page is never asked for.
    assert len(sim.requests_for(path=LIST)) == 2


def test_exactly_the_limit_is_fine(devrev_simulator):
    sim = devrev_simulator
    for number in range(10):
        add(sim, f"s{number:02d}", DAY + timedelta(minutes=number))
    op = ListSessionsOperator(task_id="list", platform="android", version_key=VERSION, max_xcom_sessions=10)

    assert len(op.execute(interval(DAY, DAY + timedelta(days=1)))) == 10


def test_output_path_streams_json_lines_and_returns_path_and_count(devrev_simulator, tmp_path):
    sim = devrev_simulator
    stored = [add(sim, f"s{number:02d}", DAY + timedelta(minutes=number)) for number in range(20)]
    target = tmp_path / "exports" / "2026-03-01" / "crashes.jsonl"
    op = ListSessionsOperator(
        task_id="list", platform="android", version_key=VERSION, output_path=str(target), max_xcom_sessions=1
    )

    result = op.execute(interval(DAY, DAY + timedelta(days=1)))

    assert result == {"path": target.as_uri(), "count": 20}
    assert [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()] == stored
    assert sorted(p.name for p in target.parent.iterdir()) == ["crashes.jsonl"], "no partial file left behind"


def test_a_rerun_overwrites_the_file(devrev_simulator, tmp_path):
    sim = devrev_simulator
    add(sim, "one", DAY + timedelta(minutes=1))
    target = (tmp_path / "out.jsonl").as_uri()
    op = ListSessionsOperator(task_id="list", platform="android", version_key=VERSION, output_path=target)
    context = interval(DAY, DAY + timedelta(days=1))
    op.execute(context)
    add(sim, "two", DAY + timedelta(minutes=2))

    assert op.execute(context) == {"path": target, "count": 2}
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 2


def test_a_failed_export_leaves_no_file(devrev_simulator, tmp_path):
    sim = devrev_simulator
    for number in range(20):
        add(sim, f"s{number:02d}", DAY + timedelta(minutes=number))
    sim.revoke_token()
    target = tmp_path / "out.jsonl"
    op = ListSessionsOperator(task_id="list", platform="android", version_key=VERSION, output_path=str(target))

    with pytest.raises(Exception, match="401"):
        op.execute(interval(DAY, DAY + timedelta(days=1)))

    assert list(tmp_path.iterdir()) == []


def test_an_empty_data_interval_fails_with_an_explanation(devrev_simulator):
    op = ListSessionsOperator(task_id="list", platform="android", version_key=VERSION)

    with pytest.raises(AirflowFailException, match="CronDataIntervalTimetable"):
        op.execute(interval(DAY, DAY))
    with pytest.raises(AirflowFailException, match="interval to list is empty"):
        op.execute({})
    assert devrev_simulator.requests == []


def test_explicit_bounds_that_render_to_the_same_instant_fail_too(devrev_simulator):
    # What "{{ data_interval_start }}" and "{{ data_interval_end }}" render to under a timetable without
    # data intervals: the same instant, written differently.
    op = ListSessionsOperator(
        task_id="list",
        platform="android",
        version_key=VERSION,
        created_after="2026-03-01 00:00:00+00:00",
        created_before="2026-03-01T01:00:00+01:00",
    )

    with pytest.raises(AirflowFailException, match="interval to list is empty"):
        op.execute(interval(DAY, DAY + timedelta(days=1)))
    assert devrev_simulator.requests == []


def test_use_data_interval_false_lists_everything(devrev_simulator):
    sim = devrev_simulator
    add(sim, "old", DAY - timedelta(days=300))
    add(sim, "new", DAY)
    op = ListSessionsOperator(task_id="list", platform="android", version_key=VERSION, use_data_interval=False)

    assert [s["session_id"] for s in op.execute({})] == ["old", "new"]
    assert sim.requests_for(path=LIST)[0].method == "GET"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"platform": "windows"}, "platform='windows'"),
        ({"version_key": ""}, "version_key=''"),
        ({"filters": {"is_crahs": True}}, "filters['is_crahs']"),
        ({"filters": {"is_crash": "yes"}}, "filters['is_crash']"),
        ({"platform": "web", "filters": {"is_crash": True}}, "filters['is_crash']"),
        ({"max_xcom_sessions": 0}, "max_xcom_sessions=0"),
    ],
)
def test_literal_bad_arguments_fail_when_the_dag_is_parsed(kwargs, field):
    arguments = {"platform": "android", "version_key": VERSION, **kwargs}
    with pytest.raises(DevRevInvalidInputError) as caught:
        ListSessionsOperator(task_id="list", **arguments)
    assert field in str(caught.value)


def test_templated_arguments_are_checked_after_rendering_before_any_request(devrev_simulator):
    op = ListSessionsOperator(
        task_id="list", platform="{{ params.platform }}", version_key=VERSION, filters={"is_crash": "{{ params.x }}"}
    )
    op.platform = "android"
    op.filters = {"is_crash": "true"}  # what rendering a template produces: text, not a boolean

    with pytest.raises(DevRevInvalidInputError, match="filters"):
        op.execute(interval(DAY, DAY + timedelta(days=1)))
    assert devrev_simulator.requests == []


def test_write_json_lines_never_publishes_half_an_export_even_where_close_commits(tmp_path, monkeypatch):
    """On an object store, closing the file completes the upload whatever happened: nothing may be written to
    the target itself until the export is complete. Stood in for by a local path whose writes are tracked."""
    opened = []
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    real_open = ObjectStoragePath.open

    def tracking_open(self, *args, **kwargs):
        opened.append(self.name)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(ObjectStoragePath, "open", tracking_open)

    def failing():
        yield {"session_id": "one"}
        raise RuntimeError("page 2 failed")

    with pytest.raises(RuntimeError):
        write_json_lines((tmp_path / "out.jsonl").as_uri(), failing())

    assert "out.jsonl" not in opened
    assert list(tmp_path.iterdir()) == []


def test_write_json_lines_accepts_plain_paths_and_counts_empty_exports(tmp_path):
    path, count = write_json_lines(str(tmp_path / "a" / "empty.jsonl"), iter(()))

    assert count == 0
    assert path == (tmp_path / "a" / "empty.jsonl").as_uri()
    assert (tmp_path / "a" / "empty.jsonl").read_text() == ""


# -- settle ------------------------------------------------------------------------------------------------


def frozen_at(monkeypatch, moment):
    monkeypatch.setattr(ListSessionsOperator, "clock", staticmethod(lambda: moment))


def test_a_deferrable_export_defers_on_airflows_date_time_trigger_until_the_end_plus_settle(
    devrev_simulator, monkeypatch
):
    from airflow.providers.common.compat.sdk import TaskDeferred

    end = DAY + timedelta(days=1)
    frozen_at(monkeypatch, end + timedelta(minutes=5))
    op = ListSessionsOperator(
        task_id="list", platform="android", version_key=VERSION, settle=timedelta(hours=1), deferrable=True
    )

    with pytest.raises(TaskDeferred) as deferred:
        op.execute(interval(DAY, end))

    trigger = deferred.value.trigger
    assert type(trigger).__name__ == "DateTimeTrigger"
    assert trigger.moment == end + timedelta(hours=1)
    assert deferred.value.method_name == "execute_complete"
    assert devrev_simulator.requests_for(path=LIST) == [], "nothing listed before the interval has settled"
    add(devrev_simulator, "late", end - timedelta(minutes=10))
    assert [s["session_id"] for s in op.execute_complete(interval(DAY, end), trigger.moment)] == ["late"]


def test_a_non_deferrable_export_is_rescheduled_until_the_end_plus_settle(devrev_simulator, monkeypatch):
    from airflow_provider_devrev._compat import AirflowRescheduleException

    end = DAY + timedelta(days=1)
    frozen_at(monkeypatch, end)
    op = ListSessionsOperator(task_id="list", platform="android", version_key=VERSION, deferrable=False)
    assert op.reschedule, "the scheduler honours a reschedule date only for tasks in reschedule mode"

    with pytest.raises(AirflowRescheduleException) as rescheduled:
        op.execute(interval(DAY, end))

    assert rescheduled.value.reschedule_date == end + timedelta(hours=2)
    assert devrev_simulator.requests_for(path=LIST) == []
    frozen_at(monkeypatch, end + timedelta(hours=2))
    assert op.execute(interval(DAY, end)) == []
    assert len(devrev_simulator.requests_for(path=LIST)) == 1


def test_settle_zero_or_an_open_interval_lists_at_once(devrev_simulator, monkeypatch):
    frozen_at(monkeypatch, DAY)
    zero = ListSessionsOperator(task_id="a", platform="android", version_key=VERSION, settle=timedelta(0))
    assert zero.execute(interval(DAY - timedelta(days=1), DAY)) == []
    unbounded = ListSessionsOperator(task_id="b", platform="android", version_key=VERSION, use_data_interval=False)
    assert unbounded.execute({}) == []
    assert len(devrev_simulator.requests_for(path=LIST)) == 2


@pytest.mark.parametrize("bad", [3600, timedelta(days=-1)])
def test_a_bad_settle_fails_the_dag_import_naming_it(bad):
    with pytest.raises(DevRevInvalidInputError, match="settle"):
        ListSessionsOperator(task_id="list", platform="android", version_key=VERSION, settle=bad)


def test_deferrable_defaults_to_the_operators_default_deferrable_setting(monkeypatch):
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    assert ListSessionsOperator(task_id="a", platform="android", version_key=VERSION).deferrable is True
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    assert ListSessionsOperator(task_id="b", platform="android", version_key=VERSION).deferrable is False


@pytest.mark.parametrize("deferrable", [False, True])
def test_the_schedulers_copy_of_the_task_holds_it_until_its_reschedule_date(deferrable):
    """
    What the scheduler reads: the DAG serialized and read back. Before 3.3 it checks a reschedule date only for
    tasks whose ``deps`` hold ``ReadyToRescheduleDep`` (from the class on 2.11, from ``_is_sensor`` on 3.0), and
    that dep looks at the task's ``reschedule``: without both, 2.11 and 3.0 run a rescheduled export again at once.
    """
    from airflow.providers.common.compat.sdk import DAG

    try:
        from airflow.serialization.serialized_objects import DagSerialization as Serializer
    except ImportError:  # Airflow 2.11 to 3.2
        from airflow.serialization.serialized_objects import SerializedDAG as Serializer  # type: ignore[no-redef]

    with DAG("settle", schedule=None, start_date=DAY) as dag:
        ListSessionsOperator(task_id="list", platform="android", version_key=VERSION, deferrable=deferrable)

    task = Serializer.from_dict(Serializer.to_dict(dag)).get_task("list")

    assert "ReadyToRescheduleDep" in {type(dep).__name__ for dep in task.deps}
    assert task.reschedule is not deferrable


def test_the_schedulers_copy_of_a_mapped_export_holds_it_until_its_reschedule_date():
    """
    The same for ``.partial().expand()``: a ``MappedOperator`` takes the class's deps on 2.11, and on 3.0 to 3.2
    is flagged a sensor only for ``BaseSensorOperator`` subclasses unless the provider sets the flag; 3.3 checks
    the date of every task up for reschedule, so the scheduler's copy needs no dep there.
    """
    from airflow import __version__
    from airflow.providers.common.compat.sdk import DAG

    try:
        from airflow.serialization.serialized_objects import DagSerialization as Serializer
    except ImportError:  # Airflow 2.11 to 3.2
        from airflow.serialization.serialized_objects import SerializedDAG as Serializer  # type: ignore[no-redef]

    with DAG("settle", schedule=None, start_date=DAY) as dag:
        ListSessionsOperator.partial(task_id="list", version_key=VERSION, deferrable=False).expand(
            platform=["android", "ios"]
        )

    task = Serializer.from_dict(Serializer.to_dict(dag)).get_task("list")

    checked = "ReadyToRescheduleDep" in {type(dep).__name__ for dep in task.deps}
    assert checked or tuple(int(part) for part in __version__.split(".")[:2]) >= (3, 3)
