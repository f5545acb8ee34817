"""The DevRev connection form as a user sees it: Airflow 3.3's UI in a real headless Chromium.

The browser test starts the real ``airflow api-server`` (with the harness of the other deployment tests), opens
Admin > Connections > Add Connection in Debian's ``chromium`` driven by Playwright (never a downloaded browser),
picks DevRev, checks the fields, saves the connection through the form, reads it back through the REST API and
tests it with ``airflow connections test`` against the simulator, which proves the token was stored as typed.

With ``DEVREV_SCREENSHOTS=<folder>`` (``make docs-screenshots``) it writes the form's pictures the docs show,
``connection-form.png`` and ``connection-form-extras.png``, into that folder.

Airflow 3.2+ renders the provider's typed extras (``conn-fields``); earlier versions have no typed extras for
this provider (2.11's would need Flask-AppBuilder widgets, 3.0's UI reads none) and show the extra JSON field
with a placeholder naming every extra. ``test_airflow_builds_the_devrev_form`` asserts, on every Airflow
version, the form metadata Airflow itself builds from the provider; the browser test asserts that on
versions before 3.2 instead of driving a UI that cannot show typed extras.
"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_devrev.testing import DevRevSimulator
from tests.deployment.harness import STARTUP_TIMEOUT, airflow_version, deployment_in, wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

    from tests.deployment.harness import Deployment

CHROMIUM = "/usr/bin/chromium"
CONN_ID = "devrev_from_the_form"
UI_TIMEOUT_MS = 60_000

#: What the form shows for DevRev: relabelled standard fields with their placeholders.
STANDARD = {"Base URL": "https://api.devrev.ai", "API token": "DevRev personal access token or service token"}
HIDDEN = ("Login", "Port", "Schema")
#: The typed extras (Airflow 3.2+): label, the value the form starts with (a switch: checked or not).
EXTRAS: dict[str, str | bool] = {
    "Read timeout (seconds)": "30",
    "Request timeout (seconds)": "300",
    "Max retries": "5",
    "Max retry wait (seconds)": "300",
    "API scope (X-Devrev-Scope)": "beta",
    "Allow plain http:// to a non-loopback host": False,
    "Proxy URL": "",
    "CA bundle (PEM file)": "",
    "Verify TLS certificates": True,
    "DevRev session link (URL template)": "",
}
EXTRA_KEYS = (
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
)


def typed_extras_rendered() -> bool:
    """Whether this Airflow's UI renders a provider's ``conn-fields`` as typed extras (3.2+)."""
    return airflow_version() >= (3, 2)


# -- every Airflow version: the form metadata Airflow builds --------------------------------------------------


def assert_airflow_builds_the_devrev_form() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    behaviour = manager.field_behaviours["devrev"]
    assert behaviour is not None
    relabeling, placeholders = behaviour["relabeling"], behaviour["placeholders"]
    assert {relabeling["host"]: placeholders["host"], relabeling["password"]: placeholders["password"]} == STANDARD
    assert {field.title() for field in behaviour["hidden_fields"]} == set(HIDDEN)
    widgets = {info.field_name: info.field for key, info in manager.connection_form_widgets.items() if "devrev" in key}
    if typed_extras_rendered():
        shown = {
            widget["schema"]["title"]: widget["schema"].get("default", "")
            for widget in (widgets[key] for key in EXTRA_KEYS)
        }
        assert {label: str(v) if not isinstance(v, bool) else v for label, v in shown.items()} == EXTRAS
    else:
        # No typed extras on this version: the extra JSON's placeholder is where a user learns the keys.
        assert widgets == {}
        named = json.loads(placeholders["extra"])
        assert set(named) <= set(EXTRA_KEYS)
        assert {"timeout", "max_retries", "proxy", "ca_bundle", "verify_tls"} <= set(named)


def test_airflow_builds_the_devrev_form() -> None:
    assert_airflow_builds_the_devrev_form()


# -- Airflow 3.3: the form in a browser -----------------------------------------------------------------------


def rest_connection(d: Deployment, conn_id: str) -> dict[str, Any]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
    with opener.open(f"http://127.0.0.1:{d.api_port}/api/v2/connections/{conn_id}", timeout=30) as response:
        result: dict[str, Any] = json.loads(response.read())
    return result


def choose_connection_type(page: Page, dialog: Locator, name: str) -> None:
    combo = dialog.get_by_role("combobox", name="Connection Type")
    combo.fill(name)
    page.get_by_role("option", name=name, exact=True).click()


def extra_field(page: Page, dialog: Locator, label: str) -> Locator:
    """The input of the extra field whose label reads ``label``.

    By the field's group, not ``get_by_label``: Airflow 3.3's UI gives the text and number inputs of typed
    extras an id other than their label's ``for``, so only the switches are reachable by label.
    """
    return dialog.get_by_role("group").filter(has=page.locator("label").get_by_text(label, exact=True)).locator("input")


def screenshot_folder(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("DEVREV_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path


@pytest.mark.deployment
def test_connection_form_in_a_real_browser(tmp_path: Path) -> None:
    if not typed_extras_rendered():
        # This UI cannot show the typed extras; what it does show comes from the metadata checked here.
        assert_airflow_builds_the_devrev_form()
        return
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's browser with `apt-get install -y chromium`")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: pip install the provider's test extra (it holds playwright)")

    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    pictures = screenshot_folder(tmp_path)
    env = {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True", "AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}
    with DevRevSimulator() as sim, deployment_in(tmp_path / "airflow", sim, dag_id="", dag_files=[], env=env) as d:
        d.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(d.api_port), "--workers", "1")
        wait_for("the API server to answer", d.health, timeout=STARTUP_TIMEOUT, deployment=d)

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1800})
                page.set_default_timeout(UI_TIMEOUT_MS)
                expect.set_options(timeout=UI_TIMEOUT_MS)
                page.goto(f"http://127.0.0.1:{d.api_port}/connections")
                page.get_by_role("button", name="Add Connection").click()
                dialog = page.get_by_role("dialog")
                dialog.get_by_label("Connection ID").fill(CONN_ID)

                # A control: the generic type shows the fields DevRev hides, so their absence below means something.
                choose_connection_type(page, dialog, "Generic")
                for label in HIDDEN:
                    expect(dialog.get_by_label(label, exact=True)).to_be_visible()

                choose_connection_type(page, dialog, "DevRev")
                for label, placeholder in STANDARD.items():
                    field = dialog.get_by_label(label, exact=True)
                    expect(field).to_be_visible()
                    expect(field).to_have_attribute("placeholder", placeholder)
                for label in HIDDEN:
                    expect(dialog.get_by_label(label, exact=True)).to_have_count(0)
                # The docs' picture shows the placeholders, before anything is typed.
                dialog.screenshot(path=pictures / "connection-form.png")
                dialog.get_by_label("Base URL", exact=True).fill(sim.url)
                dialog.get_by_label("API token", exact=True).fill(sim.token)
                expect(dialog.get_by_label("API token", exact=True)).to_have_attribute("type", "password")

                dialog.get_by_role("button", name="Extra Fields", exact=True).click()
                for label, default in EXTRAS.items():
                    field = extra_field(page, dialog, label)
                    if isinstance(default, bool):
                        expect(field).to_be_checked(checked=default)
                    else:
                        expect(field).to_have_value(default)
                dialog.screenshot(path=pictures / "connection-form-extras.png")
                extra_field(page, dialog, "Max retries").fill("7")

                dialog.get_by_role("button", name="Save").click()
                expect(dialog).to_be_hidden()
                expect(page.get_by_text(CONN_ID, exact=True).first).to_be_visible()
            finally:
                browser.close()

        saved = rest_connection(d, CONN_ID)
        assert {key: saved[key] for key in ("conn_type", "host", "login", "schema", "port", "password")} == {
            "conn_type": "devrev",
            "host": sim.url,
            "login": None,
            "schema": None,
            "port": None,
            "password": "***",  # the REST API never returns a password
        }
        assert json.loads(saved["extra"]) == {
            "timeout": 30,
            "request_timeout": 300,
            "max_retries": 7,
            "max_retry_wait": 300,
            "api_scope": "beta",
            "allow_insecure_http": False,
            "proxy": None,
            "ca_bundle": None,
            "verify_tls": True,
            "session_url_template": None,
        }
        # The token went into the DB exactly as typed: the hook's test authenticates with it.
        sim.clear_requests()
        assert "Connection success!" in d.cli("connections", "test", CONN_ID)
        assert [r.token for r in sim.requests_for("/dev-users.self")] == [1]

    for name in ("connection-form.png", "connection-form-extras.png"):
        assert_png(pictures / name)
