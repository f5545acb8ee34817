"""
The reliability report: each fault-matrix and security test records what it saw, and when
``DEVREV_RELIABILITY_REPORT`` names a file, the run writes ``docs/reliability.md``-style Markdown there.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest


@dataclass
class Row:
    fault: str
    mode: str
    expected: str
    observed: str
    requests: int
    survived: bool


@dataclass
class CredentialRow:
    case: str
    mode: str
    outcome: str
    tokens: str  # the token of each request, in order: "1 1 1 2" (1 = as first stored, 2 = after rotation)
    survived: bool


ROWS: list[Row] = []
CREDENTIAL_ROWS: list[CredentialRow] = []
TOKEN_CHECKS: list[tuple[str, int, bool]] = []


@pytest.fixture
def record():
    """``record(fault, mode, expected, observed, requests, survived)`` adds a row to the report."""

    def add(fault: str, mode: str, expected: str, observed: str, requests: int, survived: bool) -> None:
        ROWS.append(Row(fault, mode, expected, observed, requests, survived))

    return add


@pytest.fixture
def record_credentials():
    """``record_credentials(case, mode, outcome, tokens, survived)`` adds a row to the credentials table."""

    def add(case: str, mode: str, outcome: str, tokens: str, survived: bool) -> None:
        CREDENTIAL_ROWS.append(CredentialRow(case, mode, outcome, tokens, survived))

    return add


@pytest.fixture
def record_token_check():
    """``record_token_check(where, hits, ours=True)`` adds a line to the token-leak part of the report."""

    def add(where: str, hits: int, ours: bool = True) -> None:
        TOKEN_CHECKS.append((where, hits, ours))

    return add


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get("DEVREV_RELIABILITY_REPORT")
    if not target or not ROWS:
        return
    template = Path(__file__).resolve().parents[2] / "docs" / "reliability.template.md"
    text = template.read_text().replace("{{fault_matrix}}", render(exitstatus))
    text = text.replace("{{credentials}}", render_credentials())
    text = text.replace("{{deployment}}", render_deployment(os.environ.get("DEVREV_DEPLOYMENT_FIGURES")))
    text = text.replace("{{cluster}}", render_cluster(os.environ.get("DEVREV_CLUSTER_FIGURES")))
    Path(target).write_text(text)


def requests_text(count: int) -> str:
    return f"{count} request" + ("" if count == 1 else "s")


def render_deployment(path: str | None) -> str:
    """The deployment test's figures, from the JSON it wrote, as a table."""
    if not path or not Path(path).exists():
        return "_The deployment test did not run in this report's run (`make reliability` runs it)._"
    import json

    figures = json.loads(Path(path).read_text())
    lines = ["| figure | value |", "|---|---|"]
    lines += [f"| {key.replace('_', ' ')} | {value} |" for key, value in figures.items()]
    return "\n".join(lines)


def render_cluster(path: str | None) -> str:
    """The distributed deployment's figures (``tests/deployment/test_cluster.py``), one table per scenario."""
    if not path or not Path(path).exists():
        return "_The distributed deployment tests did not run in this report's run (`make reliability` runs them)._"
    import json

    figures = json.loads(Path(path).read_text())
    lines = ["| scenario | figure | value |", "|---|---|---|"]
    for scenario, values in figures.items():
        items = values.items() if isinstance(values, dict) else [("", values)]
        lines += [f"| {scenario.replace('_', ' ')} | {key.replace('_', ' ')} | {value} |" for key, value in items]
    return "\n".join(lines)


def render_credentials() -> str:
    """The credentials table: each stored-token and rotation case, and which token each request carried."""
    if not CREDENTIAL_ROWS:
        return "_The credentials tests did not run in this report's run._"
    lines = [
        f"Cases run: **{len(CREDENTIAL_ROWS)}**; ended as expected: **{sum(r.survived for r in CREDENTIAL_ROWS)}**.",
        "",
        "| case | mode | outcome | requests with the old token | with the new token | token of each request |",
        "|---|---|---|---|---|---|",
    ]
    for row in CREDENTIAL_ROWS:
        numbers = row.tokens.split()
        old, new = numbers.count("1"), numbers.count("2")
        lines.append(f"| {row.case} | {row.mode} | {row.outcome} | {old} | {new} | {row.tokens or '(none)'} |")
    return "\n".join(lines)


def render(exitstatus: int) -> str:
    import airflow

    faulted = [row for row in ROWS if row.fault != "none"]
    ours = [(where, hits) for where, hits, mine in TOKEN_CHECKS if mine]
    lines = [
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Airflow {airflow.__version__}, "
        f"Python {platform.python_version()}, pytest exit status {exitstatus}. Every row is one real Airflow run "
        "(`dag.test()`) against the DevRev simulator over HTTP on 127.0.0.1; waits run on a fake clock.",
        "",
        f"Cases run: **{len(ROWS)}**; ended as expected: **{sum(row.survived for row in ROWS)}** of {len(ROWS)}; "
        f"faults survived (the run still succeeded): **{sum(row.observed.startswith('success') for row in faulted)}**; "
        f"token hits: **{sum(hits for _, hits in ours)}** in {len(ours)} places checked.",
        "",
        "| fault | mode | expected | observed | requests seen |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {r.fault} | {r.mode} | {r.expected} | {r.observed} | {r.requests} |" for r in ROWS]
    if TOKEN_CHECKS:
        lines += ["", "### Token checks", "", "| where | token hits | whose code writes it |", "|---|---|---|"]
        lines += [
            f"| {where} | {hits} | {'this provider' if mine else 'Airflow'} |" for where, hits, mine in TOKEN_CHECKS
        ]
    return "\n".join(lines)
