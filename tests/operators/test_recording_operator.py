"""GetSessionRecordingOperator's own logic against the simulator (full DAG runs are in tests/e2e)."""

from __future__ import annotations

import json

import pytest

from airflow_provider_devrev._compat import AirflowFailException
from airflow_provider_devrev.exceptions import (
    DevRevInvalidInputError,
    DevRevNotFoundError,
    DevRevUnexpectedResponseError,
)
from airflow_provider_devrev.operators.devrev import GetSessionRecordingOperator
from tests.objectstore import attach_memory_filesystem

VERSION = "com.example.app@1.0.0"
DATA = "/observability.sessions.data.get"

pytestmark = pytest.mark.devrev_simulator(seed_data=False)


@pytest.fixture
def crash(devrev_simulator):
    session = devrev_simulator.make_session("mobile", platform="ios", is_crash=True, recording_ids=["r1", "r2"])
    return devrev_simulator.add_session(session, version_key=VERSION)


def op(**kwargs):
    return GetSessionRecordingOperator(task_id="recording", version_key=VERSION, max_retries=0, **kwargs)


def served(sim, session, **ids) -> bytes:
    return b"".join(sim.recording_chunks(session["session_id"], VERSION, **ids))


def test_without_output_path_the_recording_is_the_xcom(devrev_simulator, crash):
    result = op(session_id=crash["session_id"], recording_id="r2").execute({})

    assert result == json.loads(served(devrev_simulator, crash, recording_id="r2"))
    assert result["observability_sessions_log_data"]["value"].startswith("Incident Identifier")


def test_a_recording_above_max_xcom_bytes_is_refused_and_says_to_set_output_path(devrev_simulator, crash):
    devrev_simulator.inflate_recording(crash["session_id"], 3_000_000)

    with pytest.raises(AirflowFailException, match=r"max_xcom_bytes=1000000.*set output_path"):
        op(session_id=crash["session_id"], recording_id="r2").execute({})


def test_max_xcom_bytes_is_the_limit_in_bytes(devrev_simulator, crash):
    size = len(served(devrev_simulator, crash, recording_id="r1"))

    assert (
        op(session_id=crash["session_id"], recording_id="r1", max_xcom_bytes=size).execute({})["recording_id"] == "r1"
    )
    with pytest.raises(AirflowFailException, match=f"max_xcom_bytes={size - 1}"):
        op(session_id=crash["session_id"], recording_id="r1", max_xcom_bytes=size - 1).execute({})


@pytest.mark.parametrize("scheme", ["path", "file", "memory"])
def test_output_path_streams_the_body_and_returns_path_bytes_and_kind(devrev_simulator, crash, tmp_path, scheme):
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    attach_memory_filesystem()
    devrev_simulator.inflate_recording(crash["session_id"], 2_000_000)
    local = tmp_path / "recordings" / "r2.json"
    target = {"path": str(local), "file": local.as_uri(), "memory": f"memory://devrev-test-{tmp_path.name}/r2.json"}[
        scheme
    ]

    result = op(session_id=crash["session_id"], recording_id="r2", output_path=target).execute({})

    expected = served(devrev_simulator, crash, recording_id="r2")
    assert result == {
        "path": str(ObjectStoragePath(target if scheme != "path" else local.as_uri())),
        "bytes": len(expected),
        "recording": "mobile_recording",
    }
    stored = ObjectStoragePath(result["path"])
    assert stored.read_bytes() == expected
    assert [p.name for p in stored.parent.iterdir()] == ["r2.json"], "no partial file left behind"


def test_a_web_tab_by_tab_id(devrev_simulator, tmp_path):
    session = devrev_simulator.add_session(devrev_simulator.make_session("web", tab_ids=["t1"]), version_key=VERSION)

    result = op(session_id=session["session_id"], tab_id="t1", output_path=str(tmp_path / "t1.json")).execute({})

    assert result["recording"] == "web_recording"
    assert (tmp_path / "t1.json").read_bytes() == served(devrev_simulator, session, tab_id="t1")


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"kind": "cut_body", "after_bytes": 1_000_000}, DevRevUnexpectedResponseError),
        ({"kind": "truncated_json"}, DevRevUnexpectedResponseError),
    ],
)
def test_a_failed_export_publishes_nothing_and_keeps_the_previous_file(devrev_simulator, crash, tmp_path, fault, error):
    devrev_simulator.inflate_recording(crash["session_id"], 3_000_000)
    target = tmp_path / "r2.json"
    target.write_bytes(b"previous run")
    params = dict(fault)
    devrev_simulator.add_fault(params.pop("kind"), **params)

    with pytest.raises(error):
        op(session_id=crash["session_id"], recording_id="r2", output_path=str(target)).execute({})

    assert target.read_bytes() == b"previous run"
    assert [p.name for p in tmp_path.iterdir()] == ["r2.json"]
    assert len(devrev_simulator.requests_for(path=DATA)) == 1


def test_an_unknown_recording_fails_with_not_found(devrev_simulator, crash, tmp_path):
    with pytest.raises(DevRevNotFoundError):
        op(session_id=crash["session_id"], recording_id="r9", output_path=str(tmp_path / "x.json")).execute({})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"session_id": "s"}, "recording_id"),
        ({"session_id": "s", "recording_id": "r", "tab_id": "t"}, "tab_id"),
        ({"session_id": "", "recording_id": "r"}, "session_id"),
        ({"session_id": "s", "recording_id": "r", "max_xcom_bytes": 0}, "max_xcom_bytes"),
    ],
)
def test_literal_bad_arguments_fail_when_the_dag_is_parsed(kwargs, field):
    with pytest.raises(DevRevInvalidInputError, match=field):
        op(**kwargs)


def test_templated_arguments_are_checked_after_rendering_before_any_request(devrev_simulator):
    task = op(session_id="{{ params.session_id }}", recording_id="{{ params.recording }}")
    task.session_id, task.recording_id = "s", "   "  # what rendering produced

    with pytest.raises(DevRevInvalidInputError, match="recording_id"):
        task.execute({})
    assert devrev_simulator.requests == []


def test_template_fields():
    assert set(GetSessionRecordingOperator.template_fields) >= {
        "session_id",
        "version_key",
        "recording_id",
        "tab_id",
        "output_path",
    }
