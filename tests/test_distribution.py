"""What users install: the wheel (built from the sdist) holds every module and data file of the tree, declares
its entry points, and is what this test run imports.

``make test`` builds ``dist/`` once (``scripts/test_legs.py``), installs the wheel into each leg and names it in
``DEVREV_TEST_WHEEL`` / ``DEVREV_TEST_SDIST``. Run on its own (``make test-one``), this module builds its own
sdist and wheel from the tree first, the wheel from the sdist, as ``python -m build`` does.
"""

from __future__ import annotations

import configparser
import importlib.metadata
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import airflow_provider_devrev

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "airflow_provider_devrev"
DISTRIBUTION = "airflow-provider-devrev"
ENTRY_POINTS = {
    "apache_airflow_provider": {"provider_info": "airflow_provider_devrev.get_provider_info:get_provider_info"},
    "pytest11": {"devrev": "airflow_provider_devrev.testing.pytest_plugin"},
    "console_scripts": {"devrev-simulator": "airflow_provider_devrev.testing.__main__:main"},
}
DATA_FILES = {"py.typed", "testing/contract/openapi.yaml", "testing/contract/README.md"}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(wheel, sdist): the ones ``make test`` built, else a fresh build of the tree."""
    wheel, sdist = os.environ.get("DEVREV_TEST_WHEEL"), os.environ.get("DEVREV_TEST_SDIST")
    if wheel and sdist:
        for name, value in (("DEVREV_TEST_WHEEL", wheel), ("DEVREV_TEST_SDIST", sdist)):
            assert Path(value).is_file(), f"{name}={value!r} is not a file"
        return Path(wheel), Path(sdist)
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"python -m build failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return next(out.glob("*.whl")), next(out.glob("*.tar.gz"))


def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def dist_info_text(wheel: Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as archive:
        (member,) = [m for m in archive.namelist() if m.endswith(f".dist-info/{name}")]
        return archive.read(member).decode()


def test_the_wheel_holds_every_module_and_data_file_of_the_tree(dist):
    wheel, _ = dist
    expected = {f"airflow_provider_devrev/{p.relative_to(SOURCE).as_posix()}" for p in SOURCE.rglob("*.py")}
    expected |= {f"airflow_provider_devrev/{name}" for name in DATA_FILES}
    shipped = {name for name in wheel_names(wheel) if ".dist-info/" not in name}
    assert sorted(expected - shipped) == [], f"missing from {wheel.name}"
    # Nothing but the package: no tests, no benchmarks, no byte code.
    assert sorted(shipped - expected) == [], f"unexpected in {wheel.name}"


def test_the_wheel_declares_the_entry_points(dist):
    wheel, _ = dist
    parser = configparser.ConfigParser()
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(dist_info_text(wheel, "entry_points.txt"))
    declared = {group: dict(parser[group]) for group in parser.sections()}
    assert declared == ENTRY_POINTS


def test_the_wheel_metadata_has_one_version_the_licence_and_the_project_urls(dist):
    wheel, _ = dist
    metadata = dist_info_text(wheel, "METADATA")
    assert f"\nVersion: {airflow_provider_devrev.__version__}\n" in metadata
    assert wheel.name.startswith(f"airflow_provider_devrev-{airflow_provider_devrev.__version__}-")
    assert "\nLicense-File: LICENSE\n" in metadata
    assert {"Source Code", "Changelog", "Bug Tracker"} <= {
        line.split(": ", 1)[1].split(",", 1)[0] for line in metadata.splitlines() if line.startswith("Project-URL: ")
    }
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in wheel_names(wheel))


def test_the_sdist_carries_what_builds_the_wheel_and_the_release_files(dist):
    _, sdist = dist
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"LICENSE", "CHANGELOG.md", "README.md", "setup.cfg", "pyproject.toml", "MANIFEST.in"} <= names
    assert {f"airflow_provider_devrev/{name}" for name in DATA_FILES} <= names


def test_this_run_imports_the_installed_provider_not_the_working_tree(dist):
    """Under ``make test`` the provider comes from the built wheel; under ``make test-one`` from an editable
    install of this tree. Either way it is what pip installed, found through the environment's metadata."""
    module_file = Path(airflow_provider_devrev.__file__).resolve()
    direct_url = json.loads(importlib.metadata.distribution(DISTRIBUTION).read_text("direct_url.json") or "{}")
    if os.environ.get("DEVREV_TEST_WHEEL"):
        wheel, _ = dist
        assert not module_file.is_relative_to(SOURCE), f"the tests imported the working tree: {module_file}"
        assert "site-packages" in module_file.parts
        assert Path(direct_url["url"].removeprefix("file://")).name == wheel.name
        assert "archive_info" in direct_url
    else:
        assert direct_url.get("dir_info", {}).get("editable"), f"not an editable install: {direct_url}"
        assert module_file.is_relative_to(SOURCE)


def test_a_leg_whose_provider_comes_from_the_working_tree_refuses_to_start(tmp_path):
    """The package sits at the repository root: whatever puts the root first on sys.path (here PYTHONPATH) would
    test the tree instead of the installed wheel. tests/conftest.py then stops the session before any test."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "DEVREV_TEST_WHEEL": "any.whl"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q", str(Path(__file__))],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert f"the provider under test is {SOURCE / '__init__.py'}, not a package installed" in done.stderr


def test_the_version_is_declared_once():
    declared = configparser.ConfigParser()
    declared.read(REPO / "setup.cfg")
    assert declared["metadata"]["version"] == "attr: airflow_provider_devrev.__version__"
    assert importlib.metadata.version(DISTRIBUTION) == airflow_provider_devrev.__version__
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## [{airflow_provider_devrev.__version__}]" in changelog
