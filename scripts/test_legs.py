"""
Build the sdist and wheel once, then run Airflow's CLI smoke and the whole test suite against that wheel once per
supported Airflow version, each in its own virtualenv on its own Python (the leg table is ``scripts/legs.py``).

    python scripts/test_legs.py 2.11.2 3.0.6 3.3.2
    python scripts/test_legs.py --dist-only                # build and check dist/ (make dist)
    python scripts/test_legs.py --install-only 3.3.2       # the editable virtualenv of make demo / test-one

The build is ``python -m build``: the sdist first, then the wheel built *from the sdist* (so an sdist that cannot
build a complete wheel fails here), both checked with ``twine check --strict``; the build tools and the build's own
setuptools come from ``ci/dist-tools.lock``. For each version, ``ci/legs/airflow-<version>.txt`` says what to
install and ``ci/legs/airflow-<version>.lock`` pins the whole environment (pip constraints): Airflow first, then the
provider's wheel on top (with every extra the leg's lock holds). The script checks that installing the provider left
Airflow's version alone and that nothing outside the lock was installed, then runs Airflow's own CLI
(``scripts/leg_smoke.py``: ``airflow connections test`` with a Fernet key, ``airflow dags test``), then pytest with
``DEVREV_TEST_WHEEL`` naming the wheel; ``tests/test_distribution.py`` proves the provider it imports is that wheel,
installed, not the working tree (the package sits at the repository root, which nothing puts first on ``sys.path``:
pytest runs with ``PYTHONSAFEPATH=1``, and ``tests/conftest.py`` fails the session at start if the provider imported
is not the one installed in the leg's virtualenv). Each leg's Python, smoke, pytest summary, the provider it
imported and its wall time are printed in a table at the end; the exit status is 1 if the build or any leg failed.
The legs run side by side, each on ``DEVREV_TEST_WORKERS`` (2) pytest-xdist workers. The 3.3 leg (the primary
target) also runs the real-deployment tests, after the legs and alone, two test files at a time; the others do
not, since they start Airflow 3.3's components. Before it, ``scripts/system_deps.sh`` installs the PostgreSQL and
Redis servers they start (as root; otherwise it says what to install and the leg fails).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from legs import (
    BUILD_TOOLS,
    DIST_LOCK,
    DIST_TOOLS,
    PIP_QUIET,
    REPO,
    leg,
    locked_env,
    make_venv,
    outside_lock,
    python_label,
    run,
    smoke,
)

DIST = REPO / "dist"
DIST_VENV = REPO / ".venv-dist"
#: Each leg's whole pytest output (the console shows its tail); ignored by git.
LOGS = REPO / ".test-logs"
SYSTEM_DEPS = REPO / "scripts" / "system_deps.sh"
EDITABLE = "editable"
#: pytest-xdist workers of each leg's run (the three legs run at once) and of the deployment tests (alone).
WORKERS = os.environ.get("DEVREV_TEST_WORKERS", "2")
DEPLOYMENT_WORKERS = os.environ.get("DEVREV_DEPLOYMENT_WORKERS", "2")


def build_dist() -> tuple[Path, str | None]:
    """Build ``dist/`` afresh and check it; return the wheel and an error message, or None."""
    python = DIST_VENV / "bin" / "python"
    env = locked_env(DIST_LOCK)
    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    stamp = DIST_VENV / ".installed"
    made_from = fingerprint(minor, DIST_TOOLS, DIST_LOCK)
    if not stamp.exists() or stamp.read_text() != made_from:
        shutil.rmtree(DIST_VENV, ignore_errors=True)
    if make_venv(DIST_VENV, minor):
        return Path(), "could not create the build virtualenv"
    if run([str(python), *PIP_QUIET, "-r", str(DIST_TOOLS), *BUILD_TOOLS], env=env).returncode != 0:
        return Path(), f"could not install {DIST_TOOLS.name} under {DIST_LOCK.name}"
    stray = outside_lock(DIST_VENV, DIST_LOCK)
    if stray:
        return Path(), f"installed outside {DIST_LOCK.name}: {', '.join(stray)}"
    stamp.write_text(made_from)
    shutil.rmtree(DIST, ignore_errors=True)
    # No --sdist/--wheel: build makes the sdist, unpacks it and builds the wheel from that.
    built = run([str(python), "-m", "build", "--outdir", str(DIST), str(REPO)], stdout=subprocess.DEVNULL, env=env)
    if built.returncode:
        return Path(), "python -m build failed"
    wheels, sdists = sorted(DIST.glob("*.whl")), sorted(DIST.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        return Path(), f"expected one wheel and one sdist in {DIST}, found {[p.name for p in DIST.iterdir()]}"
    if run([str(python), "-m", "twine", "check", "--strict", str(wheels[0]), str(sdists[0])]).returncode:
        return Path(), "twine check --strict failed"
    print(f"built and checked {sdists[0].name} and {wheels[0].name} (the wheel built from the sdist)", flush=True)
    return wheels[0], None


def fingerprint(label: str, *inputs: Path) -> str:
    """What a virtualenv is made from: when any of it changes, it is made anew (a package the new lock drops must
    not stay behind)."""
    digest = hashlib.sha256(label.encode())
    for path in inputs:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def install(version: str, wheel: Path | None = None) -> str | None:
    """Create the leg's virtualenv if needed and install the provider into it under the leg's lock: the given
    wheel, or (None) an editable install of this tree. Return an error message, or None."""
    one = leg(version)
    venv = one.venv
    stamp = venv / ".installed"
    made_from = fingerprint(f"{one.python}\n{one.extras}\n", one.requirements, one.lock, REPO / "setup.cfg")
    installed = stamp.read_text().split("\n") if stamp.exists() else []
    if installed[:1] != [made_from]:
        shutil.rmtree(venv, ignore_errors=True)
    elif installed[1:] == [EDITABLE] and wheel is None:
        return None
    error = make_venv(venv, one.python)
    if error:
        return error
    # Whatever fails below leaves no stamp: the next make demo or make lint installs again.
    stamp.unlink(missing_ok=True)
    env = locked_env(one.lock)
    pip = [str(venv / "bin" / "python"), *PIP_QUIET]
    if run([*pip, "-r", str(one.requirements), *BUILD_TOOLS], env=env).returncode != 0:
        return f"could not install {one.requirements.name} under {one.lock.name}"
    before = airflow_version(venv)
    # Every extra the lock holds, so that what make docs and make bench use in .venv is checked against it too.
    if wheel is None:
        steps = [[*pip, "-e", f"{REPO}[{one.extras}]"]]
    else:
        # The extras' dependencies first, then the wheel itself over whatever provider was there (an editable
        # install of the same version would otherwise count as "already satisfied").
        steps = [[*pip, f"{wheel}[{one.extras}]"], [*pip, "--no-deps", "--force-reinstall", str(wheel)]]
    if any(run(step, env=env).returncode != 0 for step in steps):
        return "could not install the provider"
    after = airflow_version(venv)
    if before != after:
        return f"installing the provider changed Airflow from {before} to {after}"
    stray = outside_lock(venv, one.lock)
    if stray:
        return f"installed outside {one.lock.name}: {', '.join(stray)}"
    stamp.write_text(f"{made_from}\n{EDITABLE if wheel is None else wheel.name}")
    return None


def airflow_version(venv: Path) -> str:
    done = run([str(venv / "bin" / "python"), "-m", "pip", "show", "apache-airflow"], capture_output=True)
    match = re.search(r"^Version: (\S+)", done.stdout, re.MULTILINE)
    return match.group(1) if match else "none"


def imported_provider(venv: Path) -> str:
    """What the leg's Python imports as the provider: the wheel it was installed from, or an editable tree."""
    probe = (
        "import json, importlib.metadata as m, airflow_provider_devrev as p\n"
        "d = json.loads(m.distribution('airflow-provider-devrev').read_text('direct_url.json') or '{}')\n"
        "print(json.dumps({'file': p.__file__, 'url': d.get('url', ''), 'dir': 'dir_info' in d}))"
    )
    done = run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, cwd=venv)
    if done.returncode:
        return "cannot import the provider"
    found = json.loads(done.stdout)
    where = "site-packages" if "site-packages" in found["file"] else found["file"]
    source = "this tree (editable)" if found["dir"] else Path(found["url"]).name
    return f"{source}, in {where}"


class Result:
    def __init__(self, version: str) -> None:
        self.version = version
        self.python = "?"
        self.smoke = "not run"
        self.summaries: list[str] = []
        self.provider = ""
        self.ok = False
        self.seconds = 0.0


def run_leg(result: Result, wheel: Path) -> None:
    """Install the leg, run the CLI smoke, then every test but the deployment ones (see :func:`main`)."""
    started = time.monotonic()
    try:
        version = result.version
        error = install(version, wheel) or (system_servers() if runs_deployment(version) else None)
        venv = leg(version).venv
        result.python = python_label(venv)
        if error:
            result.summaries.append(error)
            return
        passed, output = smoke(venv)
        print(f"\n===== Airflow {version} on Python {result.python}: Airflow's CLI smoke\n{output[-6000:]}", flush=True)
        result.smoke = "pass" if passed else "FAIL"
        result.ok = passed and pytest_run(result, wheel, "not deployment", WORKERS)
        result.provider = imported_provider(venv)
    except (Exception, SystemExit) as err:  # in a thread it would end the thread alone, unreported
        result.summaries.append(f"{type(err).__name__}: {err}")
    finally:
        result.seconds += time.monotonic() - started


def pytest_run(result: Result, wheel: Path, marks: str, workers: str, *extra: str) -> bool:
    """One pytest run of the leg over the tests ``marks`` selects, on ``workers`` pytest-xdist workers."""
    version, venv = result.version, leg(result.version).venv
    args = [str(venv / "bin" / "python"), "-m", "pytest", "-p", "no:cacheprovider", "-m", marks, "-n", workers]
    args += extra
    # PYTHONSAFEPATH: `python -m pytest` (and any `python -m` a test starts) must not put the working directory,
    # this tree with the provider at its root, first on sys.path; tests/conftest.py checks it did not.
    env = {
        **os.environ,
        "DEVREV_TEST_WHEEL": str(wheel),
        "DEVREV_TEST_SDIST": str(sdist_of(wheel)),
        "PYTHONSAFEPATH": "1",
    }
    started = time.monotonic()
    done = run(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    seconds = time.monotonic() - started
    LOGS.mkdir(exist_ok=True)
    log = LOGS / f"airflow-{version}{'-deployment' if marks == 'deployment' else ''}.log"
    log.write_text(done.stdout)
    heading = f"Airflow {version} on Python {result.python}: {' '.join(args[2:])} (against {wheel.name})"
    # A failed run shows more of its output: the failures section is what CI's log must keep.
    tail = done.stdout[-6000 if done.returncode == 0 else -40000 :]
    print(f"\n===== {heading}, {seconds:.0f} s\n{tail}\n(the whole output: {log.relative_to(REPO)})", flush=True)
    summary = next(
        (
            line.strip("= !")
            for line in reversed(done.stdout.splitlines())
            if re.search(r"\d+ (passed|failed|errors?)\b|Interrupted", line)
        ),
        "no summary line",
    )
    result.summaries.append(f"{marks}: {summary}")
    # pytest's exit status 5 means no test ran: that is a failure too.
    return done.returncode == 0


def runs_deployment(version: str) -> bool:
    return version.startswith("3.3")


def system_servers() -> str | None:
    """Install what the deployment tests need (PostgreSQL, Redis, chromium) when missing; an error message, or None."""
    if run(["bash", str(SYSTEM_DEPS)]).returncode != 0:
        return f"{SYSTEM_DEPS.name} failed: the deployment tests need PostgreSQL, Redis and chromium (see above)"
    return None


def sdist_of(wheel: Path) -> Path:
    return next(wheel.parent.glob("*.tar.gz"))


def main(argv: list[str]) -> int:
    if argv[:1] == ["--install-only"]:
        errors = [f"Airflow {v}: {error}" for v in argv[1:] if (error := install(v))]
        print("\n".join(errors), file=sys.stderr)
        return 1 if errors else 0
    started = time.monotonic()
    wheel, error = build_dist()
    if error:
        print(f"dist: {error}", file=sys.stderr)
        return 1
    if argv[:1] == ["--dist-only"]:
        return 0
    built = time.monotonic() - started
    results = [Result(version) for version in argv]
    # The legs run side by side: most of a leg's time is spent waiting on the servers its tests start, not
    # computing. The deployment tests run afterwards, alone: they start whole Airflow deployments whose
    # heartbeats and health checks are tuned for a machine that runs nothing else of ours.
    threads = [threading.Thread(target=run_leg, args=(r, wheel)) for r in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for r in results:
        if r.ok and runs_deployment(r.version):
            deployment_started = time.monotonic()
            r.ok = pytest_run(r, wheel, "deployment", DEPLOYMENT_WORKERS, "--dist", "loadfile")
            r.seconds += time.monotonic() - deployment_started
    print(f"\nsdist and wheel built and checked in {built:.0f} s; the legs ran side by side, then the deployment tests")
    print("\n| Airflow | Python | result | CLI smoke | pytest summary | provider under test | wall time |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r.version} | {r.python} | {'pass' if r.ok else 'FAIL'} | {r.smoke} | {'; '.join(r.summaries)} "
            f"| {r.provider} | {r.seconds:.0f} s |"
        )
    print(f"\nmake test's tests took {time.monotonic() - started:.0f} s in all (build included)")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["2.11.2", "3.0.6", "3.3.2"]))
