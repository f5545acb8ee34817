"""The provider as Airflow sees it: discovery, connection form metadata, and the CLI against the simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_devrev.get_provider_info import get_provider_info

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def airflow_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AIRFLOW, *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=180, check=False
    )


def test_provider_info_matches_the_distribution_and_airflows_schema():
    import importlib.resources
    from importlib.metadata import distribution

    import jsonschema

    info = get_provider_info()
    assert info["package-name"] == distribution("airflow-provider-devrev").metadata["Name"]
    schema = json.loads(importlib.resources.files("airflow").joinpath("provider_info.schema.json").read_text())
    jsonschema.validate(info, schema)
    for section in ("hooks", "operators", "sensors", "triggers"):
        for module in info[section][0]["python-modules"]:
            __import__(module)


def test_connection_form_declares_what_the_issue_asks():
    [conn_type] = get_provider_info()["connection-types"]
    behaviour = conn_type["ui-field-behaviour"]
    assert conn_type["connection-type"] == "devrev"
    assert set(behaviour["hidden-fields"]) == {"schema", "port", "login"}
    assert behaviour["relabeling"]["password"] == "API token"
    assert behaviour["placeholders"]["host"] == "https://api.devrev.ai"
    assert set(conn_type["conn-fields"]) == {
        "timeout",
        "request_timeout",
        "max_retries",
        "max_retry_wait",
        "api_scope",
        "allow_insecure_http",
        "proxy",
        "ca_bundle",
        "verify_tls",
        "session_url_template",
    }
    # Airflow 2.11's form has no typed fields: the placeholder of the extra JSON shows the network extras.
    extras_named = json.loads(behaviour["placeholders"]["extra"])
    assert {"proxy", "ca_bundle", "verify_tls", "session_url_template"} <= set(extras_named)

    from airflow_provider_devrev.hooks.devrev import DevRevHook

    legacy = DevRevHook.get_ui_field_behaviour()
    assert {key.replace("_", "-"): value for key, value in legacy.items()} == behaviour


def test_airflow_discovers_the_hook_and_its_form_without_warnings_about_us():
    # Any warning naming this provider counts, whichever module raises it: Airflow 3.2+ warns from its
    # providers manager about a hook whose connection form is not declared in provider info.
    code = (
        "import json, warnings\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    from airflow.providers_manager import ProvidersManager\n"
        "    pm = ProvidersManager()\n"
        "    behaviours = pm.field_behaviours\n"
        "    pm.initialize_providers_hooks()\n"
        "    hook = pm._hooks_lazy_dict['devrev']\n"
        "    import airflow_provider_devrev.operators.devrev, airflow_provider_devrev.sensors.devrev\n"
        "    import airflow_provider_devrev.triggers.devrev\n"
        "print(json.dumps({'version': pm.providers['airflow-provider-devrev'].version,\n"
        "    'hook': hook.hook_class_name, 'hidden': sorted(behaviours['devrev']['hidden_fields']),\n"
        "    'warnings': [str(w.message) for w in caught if 'devrev' in str(w.message).lower()\n"
        "                 or 'airflow_provider_devrev' in w.filename]}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {
        "version": "0.1.0",
        "hook": "airflow_provider_devrev.hooks.devrev.DevRevHook",
        "hidden": ["login", "port", "schema"],
        "warnings": [],
    }


def test_airflow_providers_list_shows_the_provider():
    done = airflow_cli("providers", "list")

    assert done.returncode == 0, done.stderr[-3000:]
    assert "airflow-provider-devrev" in done.stdout


def test_airflow_connections_test_succeeds_against_the_simulator(devrev_simulator, airflow_db):
    done = airflow_cli("connections", "test", "devrev_default", AIRFLOW__CORE__TEST_CONNECTION="Enabled")

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Connection success" in done.stdout
    assert [(r.method, r.path) for r in devrev_simulator.requests] == [("GET", "/dev-users.self")]
    assert devrev_simulator.token not in done.stdout + done.stderr


def test_airflow_connections_test_fails_clearly_with_a_wrong_token(devrev_simulator, airflow_db):
    conn = json.loads(devrev_simulator.connection_json())
    conn["password"] = "wrong-token-0123456789"
    done = airflow_cli(
        "connections",
        "test",
        "devrev_default",
        AIRFLOW__CORE__TEST_CONNECTION="Enabled",
        AIRFLOW_CONN_DEVREV_DEFAULT=json.dumps(conn),
    )

    output = done.stdout + done.stderr
    assert "Connection failed" in output
    assert "401" in output
    assert "unauthenticated" in output
    assert "wrong-token-0123456789" not in output


@pytest.mark.parametrize(
    "module",
    ["airflow_provider_devrev.operators.devrev", "airflow_provider_devrev.sensors.devrev"],
)
def test_dag_parse_imports_nothing_heavy(module):
    # Airflow's own base classes come first (they load tenacity themselves); then only our module.
    code = (
        "import sys\n"
        "from airflow.providers.common.compat.sdk import BaseOperator, BaseSensorOperator, PokeReturnValue, conf\n"
        "before = set(sys.modules)\n"
        f"import {module}\n"
        "heavy = ('aiohttp', 'tenacity', 'requests', 'yarl', 'airflow_provider_devrev.testing', "
        "'airflow_provider_devrev.hooks', 'airflow_provider_devrev.triggers')\n"
        "print(sorted(m for m in set(sys.modules) - before if m.startswith(heavy)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
