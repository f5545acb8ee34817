"""
The test legs: which Airflow on which Python, and how a leg's virtualenv is installed from its lock.

A leg is one Airflow version in its own virtualenv. ``ci/legs/airflow-<version>.txt`` says what the leg asks for
(Airflow, and the pins an Airflow release needs against libraries released after it, each with its reason);
``ci/legs/airflow-<version>.lock`` is the whole environment that resolution gave on the day ``make lock`` ran,
one ``name==version`` a line. Every install of a leg runs pip with the lock as its constraints (``PIP_CONSTRAINT``,
so the isolated build environments of an editable install obey it too), the way Airflow's own constraints files
are used: a library released upstream tomorrow cannot change what a leg runs. After installing, the leg's
environment is compared with its lock, and anything outside it fails the leg.

Used by ``scripts/test_legs.py`` (make test, make install) and ``scripts/lock_legs.py`` (make lock).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LEGS_DIR = REPO / "ci" / "legs"
DIST_TOOLS = REPO / "ci" / "dist-tools.txt"
DIST_LOCK = REPO / "ci" / "dist-tools.lock"
SMOKE = REPO / "scripts" / "leg_smoke.py"
PIP_QUIET = ["-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
#: Not compared with a lock: pip is the one the leg's Python brings, and the provider is what is under test.
UNLOCKED = {"pip", "airflow-provider-devrev"}
#: Installed into every locked virtualenv at the lock's versions: the locks were resolved with them present (the
#: provider's build needs them), and a Python 3.11 virtualenv starts with an older setuptools of its own.
BUILD_TOOLS = ["setuptools", "wheel"]


@dataclass(frozen=True)
class Leg:
    """One Airflow version and the Python it is tested on."""

    airflow: str
    python: str
    #: The provider's extras the lock resolves and every install of the leg installs: the 3.3 leg's virtualenv is
    #: also ``.venv``, where make docs and make bench run, so it holds the docs and bench tools too.
    extras: str = "dev"

    @property
    def requirements(self) -> Path:
        return LEGS_DIR / f"airflow-{self.airflow}.txt"

    @property
    def lock(self) -> Path:
        return LEGS_DIR / f"airflow-{self.airflow}.lock"

    @property
    def venv(self) -> Path:
        return REPO / (".venv" if self.airflow == DEFAULT_AIRFLOW else f".venv-{self.airflow}")


# Both ends of what setup.cfg declares are tested without a fourth leg: the oldest Airflow on the oldest Python
# we declare, the current Airflow on the newest (3.13, also the newest this machine's pyenv has), 3.0 in between.
LEGS = {
    each.airflow: each
    for each in (
        Leg("2.11.2", "3.11"),
        Leg("3.0.6", "3.12"),
        Leg("3.3.2", "3.13", extras="dev,docs,bench"),
    )
}
DEFAULT_AIRFLOW = "3.3.2"  # `.venv`, shared with make demo, lint, docs and bench


def leg(version: str) -> Leg:
    try:
        return LEGS[version]
    except KeyError:
        raise SystemExit(f"no leg for Airflow {version!r}; the legs are {', '.join(LEGS)}") from None


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, text=True, check=False, **kwargs)  # type: ignore[call-overload]


def find_python(minor: str) -> Path | None:
    """An interpreter of this minor version: ``python3.X`` on PATH if it runs, else pyenv's newest 3.X.Y.

    pyenv's shims answer "command not found" for a version that is installed but not selected, so the shim on
    PATH is tried first and pyenv's versions folder second.
    """
    candidates: list[Path] = []
    on_path = shutil.which(f"python{minor}")
    if on_path:
        candidates.append(Path(on_path))
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    patch = re.compile(rf"^{re.escape(minor)}\.(\d+)$")
    found = [(int(m.group(1)), p) for p in (root / "versions").glob(f"{minor}.*") if (m := patch.match(p.name))]
    candidates += [p / "bin" / f"python{minor}" for _, p in sorted(found, reverse=True)]
    for python in candidates:
        done = run([str(python), "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"], capture_output=True)
        if done.returncode == 0 and done.stdout.strip() == minor:
            return python
    return None


def venv_python(venv: Path) -> str | None:
    """The ``major.minor`` a virtualenv was made with, or None if there is none."""
    cfg = venv / "pyvenv.cfg"
    if not cfg.exists():
        return None
    match = re.search(r"^version(?:_info)?\s*=\s*(\d+\.\d+)", cfg.read_text(), re.MULTILINE)
    return match.group(1) if match else None


def make_venv(venv: Path, minor: str) -> str | None:
    """Create ``venv`` on Python ``minor`` (replacing one made on another Python); an error message, or None."""
    if venv_python(venv) == minor and (venv / "bin" / "python").exists():
        return None
    python = find_python(minor)
    if python is None:
        return (
            f"Python {minor} not found (neither python{minor} on PATH nor under pyenv's versions): "
            f"this leg runs on Python {minor}; install it (for example `pyenv install {minor}`)"
        )
    shutil.rmtree(venv, ignore_errors=True)
    if run([str(python), "-m", "venv", str(venv)]).returncode != 0:
        return f"could not create a virtualenv with {python}"
    return None


def locked_env(lock: Path) -> dict[str, str]:
    """The environment for pip under a lock: constraints that build isolation obeys too.

    The pips the legs run (the ones their Pythons bring, 23.2 and 24.2) apply ``PIP_CONSTRAINT`` to isolated
    build environments too; pip 25.3 deprecated that in favour of ``PIP_BUILD_CONSTRAINT``, which older pips
    ignore. Both are set, so the pip of a newer Python keeps the builds locked as well.
    """
    return {**os.environ, "PIP_CONSTRAINT": str(lock), "PIP_BUILD_CONSTRAINT": str(lock)}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(lock: Path) -> dict[str, str]:
    """``{canonical name: version}`` of a lock file (``name==version`` lines, ``#`` comments)."""
    pins = {}
    for line in lock.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonical(name)] = version.strip()
    return pins


def frozen(venv: Path) -> dict[str, str]:
    """``{canonical name: version}`` of what a virtualenv holds, as ``pip freeze`` lists it.

    A package installed from a URL (``name @ url``) gets the URL as its version, which no lock line matches.
    """
    done = run(
        [str(venv / "bin" / "python"), "-m", "pip", "freeze", "--all", "--disable-pip-version-check"],
        capture_output=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"pip freeze failed in {venv}: {done.stderr.strip()[-2000:]}")
    pins = {}
    for line in done.stdout.splitlines():
        # An editable install is listed as a comment and a `-e` line, never as name==version.
        if line.startswith(("#", "-")) or not line.strip():
            continue
        name, sep, version = line.partition("==")
        if not sep:
            name, _, version = line.partition(" @ ")
        pins[canonical(name.strip())] = version.strip()
    return pins


def outside_lock(venv: Path, lock: Path) -> list[str]:
    """What a virtualenv holds that its lock does not say (a package it lacks, or another version)."""
    pins = read_lock(lock)
    return [
        f"{name}=={version} (lock: {pins.get(name, 'absent')})"
        for name, version in sorted(frozen(venv).items())
        if name not in UNLOCKED and pins.get(name) != version
    ]


def smoke(venv: Path) -> tuple[bool, str]:
    """Airflow's own CLI on this leg (scripts/leg_smoke.py): passed, and its output.

    The smoke bounds each of its commands itself (``leg_smoke.STEP_TIMEOUT``); this bound is the backstop.
    """
    try:
        done = run([str(venv / "bin" / "python"), str(SMOKE)], capture_output=True, cwd=REPO, timeout=1800)
    except subprocess.TimeoutExpired:
        return False, "the CLI smoke did not finish within 1,800 s"
    return done.returncode == 0, (done.stdout + done.stderr).strip()


def pin_summary(venv: Path, names: tuple[str, ...] = ("cryptography", "pydantic", "fastapi", "cadwyn")) -> str:
    pins = frozen(venv)
    return ", ".join(f"{name} {pins[name]}" for name in names if name in pins)


def python_label(venv: Path) -> str:
    done = run(
        [str(venv / "bin" / "python"), "-c", "import platform; print(platform.python_version())"], capture_output=True
    )
    return done.stdout.strip() or "?"
