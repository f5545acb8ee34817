"""The documentation's promises that a build cannot check: the README stays short and its links resolve, every
error class is documented, the seeded data table matches the simulator's data, the README's DAG is the one the
testing example runs, every copy of a tested file on a page matches the file, and no page has an include marker;
the home page lists each point the contract leaves unconfirmed, and the connection page's check of a session runs as
written. ``make docs`` (mkdocs build --strict) checks the site's own links, anchors and API references."""

from __future__ import annotations

import difflib
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
README = REPO / "README.md"

# [text](target) links, not images of a badge service; targets with a scheme are outside the clone.
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """The anchor GitHub and mkdocs' toc give a heading: lower case, punctuation dropped, spaces as dashes."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(markdown: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", markdown.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def _links(markdown: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", markdown.read_text(encoding="utf-8"), flags=re.S)
    return LINK.findall(text)


def test_the_readme_is_short() -> None:
    assert README.stat().st_size < 8 * 1024


def test_every_local_link_of_the_readme_resolves() -> None:
    local = [link for link in _links(README) if "://" not in link and not link.startswith("mailto:")]
    assert len(local) >= 10, local  # the "where to read next" table at least
    for link in local:
        path, _, anchor = link.partition("#")
        target = (README.parent / path).resolve() if path else README
        assert target.is_file(), f"README links to {link!r}, which does not exist"
        if anchor:
            assert anchor in _anchors(target), f"README links to {link!r}: no heading gives #{anchor}"


def test_the_readme_shows_the_dag_the_testing_example_runs() -> None:
    readme = README.read_text(encoding="utf-8")
    dag = (DOCS / "examples" / "dags" / "triage_session.py").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert dag in blocks


# GitHub renders no include, so a page shows a tested file's code in its own fence, under a comment naming the file;
# the two must stay the same.
COPY = re.compile(r"^<!-- copy of (\S+): [^\n]*-->\n```python\n(.*?)^```$", flags=re.M | re.S)
COPIES = {
    "waiting-and-fetching.md": {"docs/examples/dags/triage_session.py"},
    "exporting.md": {"dags/examples/example_devrev_crash_export.py"},
    "testing-your-own-dags.md": {"docs/examples/conftest.py", "docs/examples/test_triage_session.py"},
}


def test_no_page_has_an_include_marker_github_would_show_raw() -> None:
    for page in [README, *sorted(DOCS.glob("*.md"))]:
        assert "--8<--" not in page.read_text(encoding="utf-8"), f"{page.relative_to(REPO)} has an include marker"


def test_each_copy_of_a_tested_file_on_a_page_matches_the_file() -> None:
    texts = {page.name: page.read_text(encoding="utf-8") for page in sorted(DOCS.glob("*.md"))}
    found = {name: COPY.findall(text) for name, text in texts.items() if "<!-- copy of " in text}
    # A copy lost from a page, or a comment no longer directly above its python fence, shows up here.
    assert {name: {source for source, _ in copies} for name, copies in found.items()} == COPIES
    drifted = []
    for name, copies in found.items():
        for source, code in copies:
            tested = (REPO / source).read_text(encoding="utf-8")
            if code != tested:
                diff = difflib.unified_diff(
                    tested.splitlines(keepends=True), code.splitlines(keepends=True), source, f"docs/{name}"
                )
                drifted.append("".join(diff))
    assert not drifted, "a page's copy differs from the tested file; copy the file again:\n" + "\n".join(drifted)


def test_every_devrev_error_is_on_the_troubleshooting_page() -> None:
    from airflow_provider_devrev import exceptions
    from airflow_provider_devrev.exceptions import DevRevError

    errors = {
        name
        for name, value in vars(exceptions).items()
        if inspect.isclass(value) and issubclass(value, DevRevError) and value.__module__ == exceptions.__name__
    }
    assert len(errors) >= 12, errors
    page = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    # Each one has its own row in the errors table, first column.
    rows = set(re.findall(r"^\| `(DevRev\w+)` \|", page, flags=re.M))
    assert errors <= rows, f"not on docs/troubleshooting.md: {sorted(errors - rows)}"


def test_the_connection_page_shows_every_field_of_the_form_with_its_label() -> None:
    from airflow_provider_devrev.get_provider_info import get_provider_info

    (connection_type,) = get_provider_info()["connection-types"]
    page = (DOCS / "connection.md").read_text(encoding="utf-8")
    for label in connection_type["ui-field-behaviour"]["relabeling"].values():
        assert f"| {label} |" in page
    for name, field in connection_type["conn-fields"].items():
        assert f"| {field['label']} (`{name}`) |" in page
    assert "img/connection-form.png" in page


def test_the_upstream_test_button_bug_and_its_workarounds_are_documented() -> None:
    page = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    assert "apache/airflow#73298" in page
    for workaround in ("airflow connections test", "/api/v2/connections/test", "port `443`"):
        assert workaround in page


def test_the_seeded_data_table_is_generated_from_the_simulator_data() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "docs_seed_table.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr

    from airflow_provider_devrev.testing.data import seed_sessions

    page = (DOCS / "testing-your-own-dags.md").read_text(encoding="utf-8")
    for version_key, session in seed_sessions(0):
        assert f"| `{version_key}` | {session.get('platform', 'web')} | `{session['session_id']}` |" in page


def test_every_page_in_docs_is_in_the_site_nav_and_every_nav_entry_exists() -> None:
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    in_nav = {next(iter(entry.values())) for entry in config["nav"]}
    pages = {path.name for path in DOCS.glob("*.md")} - {"reliability.template.md"}
    assert in_nav == pages


@pytest.mark.parametrize(
    "page",
    [
        "connection.md",
        "waiting-and-fetching.md",
        "exporting.md",
        "lineage.md",
        "watching.md",
        "recordings.md",
        "testing-your-own-dags.md",
        "distributed.md",
        "troubleshooting.md",
        "reliability.md",
        "benchmarks.md",
    ],
)
def test_each_user_task_has_its_page_linked_from_the_readme(page: str) -> None:
    assert f"(docs/{page})" in README.read_text(encoding="utf-8")


def _numbered_items(markdown: str, heading: str) -> list[str]:
    """The numbered list items of the section that starts at ``heading`` (up to the next heading)."""
    section = markdown.split(heading, 1)[1].split("\n#", 1)[0]
    return re.findall(r"^\d+\. (.*)$", section, flags=re.M)


def test_the_home_page_lists_every_point_the_contract_leaves_unconfirmed() -> None:
    from airflow_provider_devrev.testing.contract import openapi_path

    contract = (openapi_path().parent / "README.md").read_text(encoding="utf-8")
    unconfirmed = _numbered_items(contract, "## Unconfirmed")
    assert len(unconfirmed) >= 5, unconfirmed
    home = (DOCS / "index.md").read_text(encoding="utf-8")
    listed = _numbered_items(home, "## What is known about DevRev's API, and what is assumed")
    assert len(listed) == len(unconfirmed), "the contract's README and docs/index.md list different points"
    for page in (home, (DOCS / "connection.md").read_text(encoding="utf-8")):
        assert "reconstructed" in page
        assert "`airflow_provider_devrev/testing/contract/`" in page
        assert "404 `not_found`" in page
    for page in [README, *DOCS.glob("*.md")]:
        assert "follows DevRev's API contract" not in page.read_text(encoding="utf-8")


def test_the_connection_pages_check_of_a_session_runs_as_written() -> None:
    # The one-liner a user runs against their tenant, run here against the simulator: for a seeded session
    # and, as the page then asks, for one that does not exist.
    from airflow_provider_devrev.testing import DevRevSimulator
    from airflow_provider_devrev.testing.data import SEED_ANDROID_SESSION_ID, SEED_VERSION_KEY

    page = (DOCS / "connection.md").read_text(encoding="utf-8")
    (code,) = re.findall(r"^python -c \"(.*get_session\(.*)\"$", page, flags=re.M)
    assert "'android', '<session id>', '<version key>'" in code
    with DevRevSimulator() as sim:
        env = {**os.environ, "AIRFLOW_CONN_DEVREV_DEFAULT": sim.connection_json()}
        outputs = {}
        for session_id in (SEED_ANDROID_SESSION_ID, "no-such-session"):
            outputs[session_id] = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    code.replace("<session id>", session_id).replace("<version key>", SEED_VERSION_KEY),
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
    found = outputs[SEED_ANDROID_SESSION_ID]
    assert found.returncode == 0, found.stderr
    assert f"'session_id': '{SEED_ANDROID_SESSION_ID}'" in found.stdout
    missing = outputs["no-such-session"]
    assert missing.returncode != 0
    assert "DevRevNotFoundError: DevRev API error 404 (not_found):" in missing.stderr
    assert "DevRevNotFoundError: DevRev API error 404 (not_found): ..." in page
