"""
Run the whole test suite once per supported Airflow version, each in its own virtualenv and Airflow home.

    python scripts/test_legs.py 2.11.2 3.0.6 3.3.2
    python scripts/test_legs.py --install-only 3.3.2      # just create/update the virtualenv

For each version, ``ci/legs/airflow-<version>.txt`` says what to install. Airflow is installed first, then
the provider on top, and the script checks that installing the provider left Airflow's version alone. Each
leg's pytest summary and wall time are printed in a table at the end; the exit status is 1 if any leg
failed. The 3.3 leg (the primary target) also runs the real-deployment test; the others do not, since it
starts Airflow 3.3's components.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_VENV_VERSION = "3.3.2"  # `.venv`, shared with `make demo`


def venv_for(version: str) -> Path:
    return REPO / (".venv" if version == DEFAULT_VENV_VERSION else f".venv-{version}")


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, text=True, check=False, **kwargs)  # type: ignore[call-overload]


def install(version: str) -> str | None:
    """Create the leg's virtualenv if needed; return an error message, or None."""
    venv = venv_for(version)
    requirements = REPO / "ci" / "legs" / f"airflow-{version}.txt"
    stamp = venv / f".installed-{version}"
    if stamp.exists() and stamp.stat().st_mtime >= max(
        requirements.stat().st_mtime, (REPO / "setup.cfg").stat().st_mtime
    ):
        return None
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if not venv.exists() and run([sys.executable, "-m", "venv", str(venv)]).returncode != 0:
        return "could not create the virtualenv"
    if run([*pip, "-r", str(requirements)]).returncode != 0:
        return f"could not install {requirements.name}"
    before = airflow_version(venv)
    if run([*pip, "-e", f"{REPO}[dev]"]).returncode != 0:
        return "could not install the provider"
    after = airflow_version(venv)
    if before != after:
        return f"installing the provider changed Airflow from {before} to {after}"
    stamp.touch()
    return None


def airflow_version(venv: Path) -> str:
    done = run([str(venv / "bin" / "python"), "-m", "pip", "show", "apache-airflow"], capture_output=True)
    match = re.search(r"^Version: (\S+)", done.stdout, re.MULTILINE)
    return match.group(1) if match else "none"


def run_leg(version: str) -> tuple[bool, str, float]:
    started = time.monotonic()
    error = install(version)
    if error:
        return False, error, time.monotonic() - started
    args = [str(venv_for(version) / "bin" / "python"), "-m", "pytest", "-p", "no:cacheprovider"]
    if not version.startswith("3.3"):
        args += ["-m", "not deployment"]
    print(f"\n===== Airflow {version}: {' '.join(args[2:])}", flush=True)
    done = run(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    print(done.stdout[-6000:], flush=True)
    summary = next(
        (line.strip("= ") for line in reversed(done.stdout.splitlines()) if re.search(r"\d+ (passed|failed)", line)),
        "no summary line",
    )
    # pytest's exit status 5 means no test ran: that is a failure too.
    return done.returncode == 0, summary, time.monotonic() - started


def main(versions: list[str]) -> int:
    if versions[:1] == ["--install-only"]:
        errors = [f"Airflow {v}: {error}" for v in versions[1:] if (error := install(v))]
        print("\n".join(errors), file=sys.stderr)
        return 1 if errors else 0
    results = [(version, *run_leg(version)) for version in versions]
    print("\n| Airflow | result | pytest summary | wall time (install + tests) |")
    print("|---|---|---|---|")
    for version, ok, summary, seconds in results:
        print(f"| {version} | {'pass' if ok else 'FAIL'} | {summary} | {seconds:.0f} s |")
    return 0 if all(ok for _, ok, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["2.11.2", "3.0.6", "3.3.2"]))
