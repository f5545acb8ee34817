"""
OpenLineage: the datasets each operator reports (run against the simulator), their names, and the provider working
exactly as before where OpenLineage cannot be imported. The end-to-end run is tests/e2e/test_openlineage.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from airflow_provider_devrev.lineage import devrev_namespace, sessions_dataset_name, storage_uri
from airflow_provider_devrev.operators.devrev import (
    GetSessionOperator,
    GetSessionRecordingOperator,
    GetSessionsOperator,
    ListSessionsOperator,
)
from airflow_provider_devrev.operators.sweep import SweepLateSessionsOperator

VERSION = "com.acme.shop@5.2.0"
DAY = datetime(2026, 2, 1, tzinfo=UTC)

pytestmark = pytest.mark.devrev_simulator(seed_data=False)

#: The OpenLineage provider is installed on the 2.11.2 and 3.3.2 legs only (ci/legs/*.txt): the 3.0.6 leg runs
#: the suite without it, so the tests that read the facets through it skip there, and only there.
needs_openlineage = pytest.mark.skipif(
    importlib.util.find_spec("airflow.providers.openlineage") is None,
    reason="apache-airflow-providers-openlineage is not installed on this leg (3.0.6 goes without it)",
)


@pytest.mark.parametrize(
    ("base_url", "namespace"),
    [
        ("https://api.devrev.ai", "devrev://api.devrev.ai"),
        ("https://api.devrev.ai:443", "devrev://api.devrev.ai"),
        ("https://API.DevRev.ai:8443/gateway", "devrev://api.devrev.ai:8443"),
        ("http://127.0.0.1:8089", "devrev://127.0.0.1:8089"),
        ("http://127.0.0.1:80", "devrev://127.0.0.1"),
        ("http://[::1]:9000", "devrev://[::1]:9000"),
        ("https://user:secret-password@api.devrev.ai", "devrev://api.devrev.ai"),
    ],
)
def test_the_namespace_is_devrevs_host_and_a_port_only_when_not_the_default(base_url, namespace):
    assert devrev_namespace(base_url) == namespace


def test_the_name_is_the_platform_and_the_version_key():
    assert sessions_dataset_name("android", VERSION) == "android/com.acme.shop@5.2.0"


@pytest.mark.parametrize(
    ("output_path", "uri"),
    [
        ("/data/devrev/2026-02-01/crashes.jsonl", "file:///data/devrev/2026-02-01/crashes.jsonl"),
        ("file:///data/crashes.jsonl", "file:///data/crashes.jsonl"),
        ("s3://aws_default@bucket/devrev/crashes.jsonl", "s3://bucket/devrev/crashes.jsonl"),
        ("s3://key-id:secret-key@bucket/k.jsonl?versionId=3#x", "s3://bucket/k.jsonl"),
        ("gs://bucket/devrev/crashes.jsonl", "gs://bucket/devrev/crashes.jsonl"),
    ],
)
def test_the_storage_uri_is_where_the_data_is_without_a_conn_id_or_credentials(output_path, uri):
    assert storage_uri(output_path) == uri


def test_a_relative_output_path_is_taken_from_the_current_folder_as_the_export_takes_it():
    assert storage_uri("exports/crashes.jsonl") == "file://" + os.path.join(os.getcwd(), "exports/crashes.jsonl")


def names(datasets):
    return [(dataset.namespace, dataset.name) for dataset in datasets]


def add(sim, session_id, *, platform="android", **fields):
    kind = "web" if platform == "web" else "mobile"
    session = sim.make_session(kind, platform=platform, session_id=session_id, **fields)
    return sim.add_session(session, version_key=VERSION)


def sim_namespace(sim) -> str:
    return "devrev://" + sim.url.split("://", 1)[1]


@needs_openlineage
def test_get_session_reads_the_platforms_sessions_and_writes_no_file(devrev_simulator):
    add(devrev_simulator, "s1")
    task = GetSessionOperator(task_id="get", platform="android", session_id="s1", version_key=VERSION)
    task.execute({})

    for lineage in (task.get_openlineage_facets_on_start(), task.get_openlineage_facets_on_complete(None)):
        assert names(lineage.inputs) == [(sim_namespace(devrev_simulator), "android/com.acme.shop@5.2.0")]
        assert lineage.outputs == []


@needs_openlineage
def test_the_namespace_comes_from_the_connection_with_no_request(monkeypatch):
    connection = {"conn_type": "devrev", "password": "a-token-0123456789"}
    monkeypatch.setenv("AIRFLOW_CONN_DEVREV_DEFAULT", json.dumps(connection))
    task = GetSessionOperator(task_id="get", platform="ios", session_id="s1", version_key=VERSION)

    lineage = task.get_openlineage_facets_on_complete(None)

    # The default host: no simulator is running, and none was needed.
    assert names(lineage.inputs) == [("devrev://api.devrev.ai", "ios/com.acme.shop@5.2.0")]


@needs_openlineage
def test_get_sessions_with_output_path_writes_that_file(devrev_simulator, tmp_path):
    add(devrev_simulator, "s1", platform="web")
    output = tmp_path / "sessions.jsonl"
    task = GetSessionsOperator(task_id="many", platform="web", version_key=VERSION, session_ids=["s1"])
    task.output_path = str(output)
    task.execute({})

    lineage = task.get_openlineage_facets_on_complete(None)

    assert names(lineage.inputs) == [(sim_namespace(devrev_simulator), "web/com.acme.shop@5.2.0")]
    # OpenLineage's naming of a local file (its common-io converter): namespace "file", the absolute path.
    assert names(lineage.outputs) == [("file", str(output))]
    assert output.exists()
    # A failed run publishes no file: its lineage names none.
    assert task.get_openlineage_facets_on_failure(None).outputs == []


@needs_openlineage
def test_list_sessions_exporting_to_s3_names_the_bucket_and_key_without_the_conn_id(devrev_simulator):
    task = ListSessionsOperator(
        task_id="export",
        platform="android",
        version_key=VERSION,
        output_path="s3://aws_default@devrev-exports/2026-02-01/android.jsonl",
    )

    lineage = task.get_openlineage_facets_on_start()

    assert names(lineage.inputs) == [(sim_namespace(devrev_simulator), "android/com.acme.shop@5.2.0")]
    assert names(lineage.outputs) == [("s3://devrev-exports", "2026-02-01/android.jsonl")]


@needs_openlineage
def test_list_sessions_into_xcom_writes_no_file(devrev_simulator):
    task = ListSessionsOperator(task_id="list", platform="ios", version_key=VERSION, use_data_interval=False)
    task.execute({})

    lineage = task.get_openlineage_facets_on_complete(None)

    assert names(lineage.inputs) == [(sim_namespace(devrev_simulator), "ios/com.acme.shop@5.2.0")]
    assert lineage.outputs == []


@needs_openlineage
def test_the_output_is_named_as_openlineage_names_that_storage_for_any_task(devrev_simulator, tmp_path):
    from airflow.providers.common.compat.assets import Asset
    from airflow.providers.openlineage.extractors.manager import ExtractorManager

    for output_path, uri in [
        (str(tmp_path / "a.jsonl"), (tmp_path / "a.jsonl").as_uri()),
        ("s3://aws_default@bucket/devrev/a.jsonl", "s3://bucket/devrev/a.jsonl"),
        ("gs://bucket/devrev/a.jsonl", "gs://bucket/devrev/a.jsonl"),
    ]:
        task = ListSessionsOperator(task_id="export", platform="android", version_key=VERSION, output_path=output_path)
        # The provider's naming of the same storage declared as a task's outlet.
        expected = ExtractorManager.convert_to_ol_dataset(Asset(uri=uri))
        if expected is None:  # no Airflow provider for the scheme here: the provider's object-storage naming
            expected = ExtractorManager.convert_to_ol_dataset_from_object_storage_uri(uri)
        assert names(task.get_openlineage_facets_on_complete(None).outputs) == names([expected])


@needs_openlineage
@pytest.mark.parametrize("name", ["données/crashes.jsonl", "a b/crashes.jsonl", "caf\u00e9 \u2615.jsonl"])
def test_a_local_file_is_named_alike_on_every_airflow_whatever_its_characters(devrev_simulator, tmp_path, name):
    # Airflow 2.11's Dataset takes ASCII URIs only: a path with an accent fell to the object-storage naming
    # there ("file://", the path without its leading "/"), another dataset than on Airflow 3 for the same file.
    path = str(tmp_path / name)
    for output_path in (path, "file://" + path):
        task = ListSessionsOperator(task_id="export", platform="android", version_key=VERSION, output_path=output_path)
        assert names(task.get_openlineage_facets_on_complete(None).outputs) == [("file", path)]


@needs_openlineage
def test_a_recording_names_its_sessions_by_the_kind_of_id_and_writes_its_file(devrev_simulator, tmp_path):
    crash = add(devrev_simulator, "m1", platform="ios", is_crash=True, recording_ids=["r1"])
    web = add(devrev_simulator, "w1", platform="web")
    output = tmp_path / "recording.json"
    mobile_task = GetSessionRecordingOperator(
        task_id="mobile", session_id=crash["session_id"], version_key=VERSION, recording_id="r1"
    )
    web_task = GetSessionRecordingOperator(
        task_id="web", session_id="w1", version_key=VERSION, tab_id=web["tab_ids"][0], output_path=str(output)
    )
    mobile_task.execute({})
    web_task.execute({})

    mobile, tab = (
        mobile_task.get_openlineage_facets_on_complete(None),
        web_task.get_openlineage_facets_on_complete(None),
    )

    # A recording request names no platform: a recording id is an Android or iOS session's, a tab a web one's.
    assert names(mobile.inputs) == [(sim_namespace(devrev_simulator), "mobile/com.acme.shop@5.2.0")]
    assert mobile.outputs == []
    assert names(tab.inputs) == [(sim_namespace(devrev_simulator), "web/com.acme.shop@5.2.0")]
    assert names(tab.outputs) == [("file", str(output))]
    # ...unless the DAG names the platform (the argument the DevRev session link needs).
    named = GetSessionRecordingOperator(
        task_id="named", session_id=crash["session_id"], version_key=VERSION, recording_id="r1", platform="ios"
    )
    named.execute({})
    assert names(named.get_openlineage_facets_on_complete(None).inputs) == [
        (sim_namespace(devrev_simulator), "ios/com.acme.shop@5.2.0")
    ]


@needs_openlineage
def test_a_sweep_reads_the_export_and_writes_the_late_file_it_wrote(devrev_simulator, tmp_path):
    export = tmp_path / "day.jsonl"
    add(devrev_simulator, "early", created_at=DAY + timedelta(hours=1))
    arguments = {
        "platform": "android",
        "version_key": VERSION,
        "output_path": str(export),
        "created_after": DAY,
        "created_before": DAY + timedelta(days=1),
        "use_data_interval": False,
        "settle": timedelta(0),
    }
    ListSessionsOperator(task_id="export", **arguments).execute({})
    add(devrev_simulator, "late", created_at=DAY + timedelta(hours=2))
    sweep = SweepLateSessionsOperator(task_id="sweep", **arguments)

    before = sweep.get_openlineage_facets_on_start()
    sweep.execute({})
    after = sweep.get_openlineage_facets_on_complete(None)

    sessions = (sim_namespace(devrev_simulator), "android/com.acme.shop@5.2.0")
    assert names(before.inputs) == names(after.inputs) == [sessions, ("file", str(export))]
    assert before.outputs == []  # which late file it writes is known once written
    assert names(after.outputs) == [("file", str(tmp_path / "day.late-1.jsonl"))]


#: Runs the operators as on a deployment where neither OpenLineage's provider nor its client is installed: their
#: modules are not found and their distributions not listed (Airflow discovers providers by their distribution's
#: entry point), and prints what the operators returned and wrote.
WITHOUT_OPENLINEAGE = textwrap.dedent(
    """
    import importlib.machinery, importlib.metadata, json, sys

    def hidden(name):  # a module or a distribution of OpenLineage's, its provider's included
        name = name.lower().replace("_", "-").replace(".", "-")
        return name == "openlineage" or name.startswith(
            ("openlineage-", "airflow-providers-openlineage", "apache-airflow-providers-openlineage")
        )

    class Without:
        # One of Python's finders, finding neither OpenLineage's modules nor its distributions.
        def __init__(self, finder):
            self.finder = finder

        def find_spec(self, name, path=None, target=None):
            find = getattr(self.finder, "find_spec", None)
            return None if hidden(name) or find is None else find(name, path, target)

        def find_distributions(self, *args, **kwargs):
            found = getattr(self.finder, "find_distributions", lambda *args, **kwargs: ())(*args, **kwargs)
            return (dist for dist in found if not hidden(dist.metadata["Name"] or ""))

        def invalidate_caches(self):
            getattr(self.finder, "invalidate_caches", lambda: None)()

    try:  # Airflow 2.11 lists providers through this backport, which puts a finder of its own on sys.meta_path
        import importlib_metadata as backport
    except ImportError:
        backport = importlib.metadata
    sys.meta_path[:] = [Without(finder) for finder in sys.meta_path]
    for metadata in (importlib.metadata, backport):
        try:
            metadata.version("apache-airflow-providers-openlineage")
            raise SystemExit("the OpenLineage provider is still listed")
        except metadata.PackageNotFoundError:
            pass
    from pathlib import Path

    from airflow_provider_devrev.operators.devrev import (
        GetSessionOperator, GetSessionsOperator, ListSessionsOperator,
    )

    folder = Path(sys.argv[1])
    common = {"platform": "android", "version_key": sys.argv[2]}
    results = {
        "get": GetSessionOperator(task_id="get", session_id="s1", **common).execute({}),
        "many": GetSessionsOperator(
            task_id="many", session_ids=["s2", "s1"], output_path=str(folder / "many.jsonl"), **common
        ).execute({}),
        "list": ListSessionsOperator(
            task_id="list", output_path=str(folder / "list.jsonl"), use_data_interval=False, **common
        ).execute({}),
    }
    try:
        GetSessionOperator(task_id="get", session_id="s1", **common).get_openlineage_facets_on_complete(None)
    except ImportError:
        results["lineage"] = "ImportError"
    results["files"] = {name: (folder / name).read_text() for name in ("many.jsonl", "list.jsonl")}
    results["imported"] = sorted(m for m in sys.modules if hidden(m))
    print(json.dumps(results))
    """
)


def run_operators_in_process(folder: Path) -> dict:
    common = {"platform": "android", "version_key": VERSION}
    results = {
        "get": GetSessionOperator(task_id="get", session_id="s1", **common).execute({}),
        "many": GetSessionsOperator(
            task_id="many", session_ids=["s2", "s1"], output_path=str(folder / "many.jsonl"), **common
        ).execute({}),
        "list": ListSessionsOperator(
            task_id="list", output_path=str(folder / "list.jsonl"), use_data_interval=False, **common
        ).execute({}),
    }
    results["files"] = {name: (folder / name).read_text() for name in ("many.jsonl", "list.jsonl")}
    return results


def test_without_openlineage_the_operators_work_exactly_as_with_it(devrev_simulator, tmp_path):
    add(devrev_simulator, "s1")
    add(devrev_simulator, "s2")
    blocked, here = tmp_path / "blocked", tmp_path / "here"
    blocked.mkdir()
    here.mkdir()

    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_OPENLINEAGE, str(blocked), VERSION],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONSAFEPATH": "1"},
    )

    assert done.returncode == 0, done.stderr[-3000:]
    without = json.loads(done.stdout.strip().splitlines()[-1])
    assert without.pop("imported") == []
    # Only OpenLineage's own caller would ever ask for lineage; asked anyway, it is OpenLineage that is missing.
    assert without.pop("lineage") == "ImportError"
    with_it = run_operators_in_process(here)
    # The same XComs (the paths aside, which name each run's own folder) and the same files, byte for byte.
    for result in (without, with_it):
        for name in ("many", "list"):
            result[name]["path"] = Path(result[name]["path"].removeprefix("file://")).name
    assert without == with_it
    assert [json.loads(line)["session_id"] for line in without["files"]["many.jsonl"].splitlines()] == ["s2", "s1"]


@pytest.mark.parametrize(
    "module",
    [
        "airflow_provider_devrev.operators.devrev",
        "airflow_provider_devrev.operators.sweep",
        "airflow_provider_devrev.lineage",
    ],
)
def test_parsing_a_dag_imports_nothing_of_openlineage(module):
    # Airflow's base classes first (whatever Airflow itself loads is not ours to count), then only our module.
    code = (
        "import sys\n"
        "from airflow.providers.common.compat.sdk import BaseOperator, BaseSensorOperator, PokeReturnValue, conf\n"
        "before = set(sys.modules)\n"
        f"import {module}\n"
        "print(sorted(m for m in set(sys.modules) - before if 'openlineage' in m))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
