"""
The "DevRev session" button as a user meets it: Airflow 3.3's UI in a real headless Chromium, on a task instance
that a real scheduler, worker and triggerer ran.

The deployment (``tests/deployment/harness.py``: scheduler, dag processor, triggerer, API server on loopback)
runs ``tests/e2e/dags/devrev_e2e_links.py`` against the simulator, with the connection's
``session_url_template`` set. The browser then opens each finished task instance's page, as a user coming from
the grid would, and finds the button and its address; a task that has no link (a mobile recording fetched
without ``platform``) shows none.

With ``DEVREV_SCREENSHOTS=<folder>`` (``make docs-screenshots``) it writes ``session-link.png``, the task page
with its button, into that folder.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_devrev.testing import DevRevSimulator
from tests.deployment.harness import airflow_version, deployment_in, wait_for
from tests.deployment.test_connection_form import CHROMIUM, UI_TIMEOUT_MS, assert_png, screenshot_folder
from tests.e2e.test_session_links import DAG_ID, LINK, MOBILE_URL, TEMPLATE, WEB_URL, add_sessions

pytestmark = [
    pytest.mark.deployment,
    pytest.mark.skipif(airflow_version() < (3, 3), reason="drives Airflow 3.3's UI (2.11 and 3.0 are in e2e)"),
]

DAG_FILE = Path(__file__).resolve().parents[1] / "e2e" / "dags" / "devrev_e2e_links.py"
RUN_ID = "links-in-the-ui"
RUN_TIMEOUT = 240.0
#: task (and map index) -> the address its button must have; None: no button.
EXPECTED: dict[tuple[str, int], str | None] = {
    ("get", -1): MOBILE_URL,
    ("wait_poke", -1): WEB_URL,
    ("wait_reschedule", -1): WEB_URL,
    ("wait_deferrable", -1): WEB_URL,
    ("recordings", 0): MOBILE_URL,
    ("recordings", 1): MOBILE_URL,
    ("web_recording", -1): WEB_URL,
    ("no_platform", -1): None,
}


def api(port: int, path: str) -> Any:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
    with opener.open(f"http://127.0.0.1:{port}/api/v2/{path}", timeout=30) as response:
        return json.loads(response.read())


def details_page(port: int, task_id: str, map_index: int) -> str:
    """The task instance's Details tab, where Airflow 3.3's UI shows its extra links."""
    run = urllib.parse.quote(RUN_ID, safe="")
    page = f"http://127.0.0.1:{port}/dags/{DAG_ID}/runs/{run}/tasks/{task_id}"
    return f"{page}/details" if map_index < 0 else f"{page}/mapped/{map_index}/details"


def test_a_finished_task_shows_the_devrev_session_button_with_its_address(tmp_path: Path) -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's browser with `apt-get install -y chromium`")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: pip install the provider's test extra (it holds playwright)")

    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    pictures = screenshot_folder(tmp_path)
    with DevRevSimulator(port=0, clock=time.time) as sim:
        add_sessions(sim)
        env = {
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW_CONN_DEVREV_DEFAULT": sim.connection_json(session_url_template=TEMPLATE),
        }
        with deployment_in(tmp_path / "airflow", sim, dag_id=DAG_ID, dag_files=[], env=env) as d:
            shutil.copy(DAG_FILE, d.home / "dags" / DAG_FILE.name)
            d.start_core()
            d.cli("dags", "unpause", DAG_ID)
            d.cli("dags", "trigger", DAG_ID, "--run-id", RUN_ID)
            state = wait_for(
                "the run to finish",
                lambda: d.run_state(RUN_ID) if d.run_state(RUN_ID) in ("success", "failed") else None,
                timeout=RUN_TIMEOUT,
                deployment=d,
            )
            assert state == "success", f"{d.task_states(RUN_ID)}\n{d.tails()}"

            # What the UI will ask the API server for, first: one link per task instance, or none.
            served = {
                key: api(d.api_port, f"dags/{DAG_ID}/dagRuns/{RUN_ID}/taskInstances/{key[0]}/links?map_index={key[1]}")
                for key in EXPECTED
            }
            assert {key: answer["extra_links"] for key, answer in served.items()} == {
                key: {LINK: url} for key, url in EXPECTED.items()
            }

            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
                try:
                    page = browser.new_page(viewport={"width": 1400, "height": 900})
                    page.set_default_timeout(UI_TIMEOUT_MS)
                    expect.set_options(timeout=UI_TIMEOUT_MS)
                    for (task_id, map_index), url in EXPECTED.items():
                        page.goto(details_page(d.api_port, task_id, map_index))
                        # The section is there once the links are loaded (for a task with none too): only then
                        # is "no button" a fact.
                        expect(page.get_by_role("heading", name="Extra Links")).to_be_visible()
                        # And the task instance itself, for the picture (the links come first, then the details).
                        expect(page.get_by_text("Success", exact=True).first).to_be_visible()
                        button = page.get_by_role("link", name=LINK, exact=True)
                        if url is None:
                            expect(button).to_have_count(0)
                            continue
                        expect(button).to_have_attribute("href", url)
                        if (task_id, map_index) == ("get", -1):
                            page.screenshot(path=pictures / "session-link.png")
                finally:
                    browser.close()
    assert_png(pictures / "session-link.png")
