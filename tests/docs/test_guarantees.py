"""
``docs/guarantees.md`` names, for every promise the docs make about time, secrets, outcomes and delivery, the tests
that try to break it. This keeps the page honest without running any of them: every test it names must exist (read
with ``ast``, never imported or collected, so it is fast and needs no server), a test that only runs on the
deployment leg must say so, every ``open: #N`` must be an issue the page's header lists as open, and each docs page
that makes an open promise must say that it does not hold yet (it names the issue).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "guarantees.md"
LEGS = ("2.11.2", "3.0.6", "3.3.2")
#: The page's sections, in order: the promises of issue 26 first, as that issue asks.
SECTIONS = ("Issue 26", "Time", "Secrets", "Outcomes", "Delivery")
NO_TEST = "(no test yet)"
NO_LEGS = "—"

OPEN_ISSUES = re.compile(r"^Open issues: ((?:#\d+(?:, )?)+)\.$", re.M)
OPEN = re.compile(r"^open: #(\d+)$")
CODE = re.compile(r"`([^`]+)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"```.*?```", re.S)


@dataclass(frozen=True)
class Row:
    """One promise: the table row's cells as written, and where it is."""

    line: int
    section: str
    promise: str
    made_in: str
    test: str
    legs: str


def rows(text: str) -> tuple[list[Row], list[str]]:
    """The table rows under each ``##`` heading, and a problem for each row that is not four cells."""
    found: list[Row] = []
    problems: list[str] = []
    section = ""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("## "):
            section = line[3:]
        elif line.startswith("|") and not line.startswith(("| Promise |", "|---")):
            cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
            if len(cells) != 4:
                problems.append(f"line {number}: {len(cells)} cells, not Promise | Made in | Test | Legs")
                continue
            found.append(Row(number, section, *cells))
    return found, problems


def open_issues(text: str) -> set[int]:
    match = OPEN_ISSUES.search(text)
    return {int(number) for number in re.findall(r"\d+", match.group(1))} if match else set()


def _definition(scope: list[ast.stmt], name: str) -> ast.stmt | None:
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return next((node for node in scope if isinstance(node, kinds) and node.name == name), None)


def missing(ref: str, root: Path) -> str | None:
    """
    Why ``ref`` names nothing under ``root``, or None: ``path.py`` (the module), ``path.py::name`` or
    ``path.py::Class::name``, found by reading the file, so nothing is imported.
    """
    if "[" in ref:
        return f"{ref}: node ids go without a parametrization's brackets"
    path, *names = ref.split("::")
    source = root / path
    if not path.endswith(".py") or not source.is_file():
        return f"{ref}: no file {path}"
    scope: list[ast.stmt] = ast.parse(source.read_text(encoding="utf-8")).body
    for position, name in enumerate(names):
        node = _definition(scope, name)
        if node is None:
            return f"{ref}: no {name} in {'::'.join([path, *names[:position]])}"
        scope = node.body if isinstance(node, ast.ClassDef) else []
    return None


def deployment_only(ref: str, root: Path) -> bool:
    """Whether the test is marked ``deployment`` (by its module or itself), so runs on the 3.3.2 leg alone."""
    path, *names = ref.split("::")
    scope = ast.parse((root / path).read_text(encoding="utf-8")).body
    marks = [
        ast.unparse(node.value)
        for node in scope
        if isinstance(node, ast.Assign) and any(getattr(target, "id", "") == "pytestmark" for target in node.targets)
    ]
    for name in names:
        node = _definition(scope, name)
        marks += [ast.unparse(decorator) for decorator in getattr(node, "decorator_list", [])]
        scope = getattr(node, "body", [])
    return any("mark.deployment" in mark for mark in marks)


def _slug(heading: str) -> str:
    """The anchor mkdocs' toc (and GitHub) gives a heading: code and emphasis marks dropped, spaces as dashes."""
    text = re.sub(r"[^\w\- ]", "", re.sub(r"[`*]", "", heading.strip().lower()))
    return text.replace(" ", "-")


def _page_problem(page: Path, anchor: str, ref: str) -> str | None:
    if not page.is_file():
        return f"{ref}: no page {page.name}"
    headings = FENCE.sub("", page.read_text(encoding="utf-8")).splitlines()
    if anchor and anchor not in {_slug(line.lstrip("#")) for line in headings if line.startswith("#")}:
        return f"{ref}: no heading of {page.name} gives #{anchor}"
    return None


def made_in_problems(made_in: str, root: Path) -> tuple[list[str], list[Path]]:
    """What is wrong with a Made in cell (docs links, ``README.md#...``, ``module.py::name``), and its docs pages."""
    problems: list[str] = []
    pages: list[Path] = []
    for target in LINK.findall(made_in):
        path, _, anchor = target.partition("#")
        pages.append(root / "docs" / path)
        problems.append(_page_problem(pages[-1], anchor, target) or "")
    for ref in CODE.findall(made_in):
        path, _, anchor = ref.partition("#")
        problems.append(_page_problem(root / path, anchor, ref) if path.endswith(".md") else missing(ref, root) or "")
    if not pages and not CODE.findall(made_in):
        problems.append("Made in names no page or docstring")
    return [problem for problem in problems if problem], pages


def legs_problem(legs: str, deployment: bool) -> str | None:
    if deployment:
        return None if legs == "3.3.2" else f"legs {legs!r}: its tests are marked deployment, which runs on 3.3.2 only"
    head = legs.partition(" (")[0]
    if head == "all" or (head and set(head.split(", ")) <= set(LEGS)):
        return None
    return f"legs {legs!r}: not 'all' or a list of {', '.join(LEGS)}"


def open_problems(number: int, pages: list[Path], issues: set[int]) -> list[str]:
    """An ``open: #N`` row: N is an open issue, and each docs page making the promise says it does not hold yet."""
    if number not in issues:
        return [f"open: #{number} is not one of the open issues the header lists ({sorted(issues)})"]
    if not pages:
        return [f"open: #{number} names no docs page to say the promise does not hold yet"]
    return [
        f"{page.name} makes a promise open in #{number} without saying so (no 'issue {number}')"
        for page in pages
        if page.is_file() and f"issue {number}" not in page.read_text(encoding="utf-8").lower()
    ]


def named_test_problems(row: Row, root: Path) -> list[str]:
    """A row with tests: node ids in backticks that all exist, and legs that fit their markers."""
    refs = CODE.findall(row.test)
    if not refs or CODE.sub("", row.test).replace(",", "").strip():
        return [f"test {row.test!r}: not node ids in backticks, 'open: #N' or {NO_TEST!r}"]
    broken = [reason for reason in (missing(ref, root) for ref in refs) if reason]
    if broken:
        return broken
    problem = legs_problem(row.legs, all(deployment_only(ref, root) for ref in refs))
    return [problem] if problem else []


def row_problems(row: Row, issues: set[int], root: Path) -> list[str]:
    problems, pages = made_in_problems(row.made_in, root)
    opened = OPEN.match(row.test)
    if (opened or row.test == NO_TEST) and row.legs != NO_LEGS:
        problems.append(f"legs {row.legs!r}: a promise without tests runs on no leg ({NO_LEGS})")
    if opened:
        problems += open_problems(int(opened.group(1)), pages, issues)
    elif row.test != NO_TEST:
        problems += named_test_problems(row, root)
    return [f"line {row.line} ({row.promise[:50]}...): {problem}" for problem in problems]


def page_problems(text: str, root: Path) -> list[str]:
    """Everything wrong with a guarantees page whose tests and docs live under ``root``."""
    found, problems = rows(text)
    issues = open_issues(text)
    if not issues:
        problems.append("no 'Open issues: #N, #M.' line")
    for row in found:
        problems += row_problems(row, issues, root)
    return problems


def test_every_promise_names_tests_that_exist_or_an_open_issue_its_page_admits() -> None:
    problems = page_problems(PAGE.read_text(encoding="utf-8"), REPO)
    assert problems == [], "\n".join(problems)


def test_the_page_has_its_sections_in_order_each_with_promises() -> None:
    found, _ = rows(PAGE.read_text(encoding="utf-8"))
    sections = list(dict.fromkeys(row.section for row in found))
    assert [section.split(":")[0] for section in sections] == list(SECTIONS)
    assert all(sum(row.section == section for row in found) >= 5 for section in sections)


def _tree(root: Path) -> None:
    """A small repository: two test modules (one for deployment only) and a docs page that admits issue 27."""
    (root / "tests").mkdir()
    (root / "tests" / "test_a.py").write_text("class TestA:\n    def test_b(self): ...\n\n\ndef test_c(): ...\n")
    deployment = "import pytest\n\npytestmark = pytest.mark.deployment\n\n\ndef test_e(): ...\n"
    (root / "tests" / "test_d.py").write_text(deployment)
    (root / "docs").mkdir()
    (root / "docs" / "page.md").write_text("# Page\n\n## A `code` heading\n\nNot yet: see issue 27.\n")
    (root / "docs" / "other.md").write_text("# Other\n")


def _page(*table: str) -> str:
    header = "Open issues: #27, #28.\n\n## Time\n\n| Promise | Made in | Test | Legs |\n|---|---|---|---|\n"
    return header + "\n".join(table)


def test_the_checker_accepts_what_resolves(tmp_path: Path) -> None:
    _tree(tmp_path)
    page = _page(
        "| p | [page](page.md#a-code-heading) | `tests/test_a.py::TestA::test_b`, `tests/test_a.py::test_c` | all |",
        "| p | `tests/test_a.py::test_c` | `tests/test_a.py` | 2.11.2, 3.3.2 (why) |",
        "| p | [page](page.md) | `tests/test_d.py::test_e` | 3.3.2 |",
        "| p | [page](page.md) | open: #27 | — |",
        "| p | [other](other.md) | (no test yet) | — |",
    )

    assert page_problems(page, tmp_path) == []


def test_the_checker_reports_bogus_node_ids_closed_issues_and_pages_that_do_not_admit_them(tmp_path: Path) -> None:
    _tree(tmp_path)
    page = _page(
        "| no such test | [page](page.md) | `tests/test_a.py::test_nothing` | all |",
        "| no such method | [page](page.md) | `tests/test_a.py::TestA::test_c` | all |",
        "| no such module | [page](page.md) | `tests/test_missing.py` | all |",
        "| brackets | [page](page.md) | `tests/test_a.py::test_c[x]` | all |",
        "| not an id | [page](page.md) | tests/test_a.py::test_c | all |",
        "| wrong legs | [page](page.md) | `tests/test_d.py::test_e` | all |",
        "| closed issue | [page](page.md) | open: #26 | — |",
        "| page silent | [other](other.md) | open: #28 | — |",
        "| no page | [gone](gone.md#x) | `tests/test_a.py::test_c` | all |",
        "| no anchor | [page](page.md#nowhere) | `tests/test_a.py::test_c` | sometimes |",
        "| three cells | [page](page.md) | all |",
    )

    problems = "\n".join(page_problems(page, tmp_path))

    for expected in [
        "tests/test_a.py::test_nothing: no test_nothing in tests/test_a.py",
        "tests/test_a.py::TestA::test_c: no test_c in tests/test_a.py::TestA",
        "tests/test_missing.py: no file tests/test_missing.py",
        "tests/test_a.py::test_c[x]: node ids go without a parametrization's brackets",
        "test 'tests/test_a.py::test_c': not node ids in backticks",
        "legs 'all': its tests are marked deployment",
        "open: #26 is not one of the open issues the header lists ([27, 28])",
        "other.md makes a promise open in #28 without saying so",
        "gone.md#x: no page gone.md",
        "page.md#nowhere: no heading of page.md gives #nowhere",
        "legs 'sometimes': not 'all'",
        "3 cells, not Promise | Made in | Test | Legs",
    ]:
        assert expected in problems
    assert len(problems.splitlines()) == 12, problems
    assert page_problems("## Time\n", tmp_path) == ["no 'Open issues: #N, #M.' line"]
