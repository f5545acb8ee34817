"""
``make lock``: refresh the legs' locks deliberately (``ci/legs/airflow-<version>.lock``, ``ci/dist-tools.lock``).

    python scripts/lock_legs.py                 # every leg, and the build tools
    python scripts/lock_legs.py 3.0.6           # one leg
    python scripts/lock_legs.py dist            # the build tools alone

For each leg, in a new virtualenv on the leg's Python and with no constraints: pip resolves
``ci/legs/airflow-<version>.txt`` together with the provider (this tree) and its extras, the resolution is
frozen, and Airflow's CLI smoke (``scripts/leg_smoke.py``) runs on it. Only a leg whose smoke passed gets its lock
rewritten; the others keep theirs and the command exits 1. A new lock has not been through the suite yet: run
``make test`` before committing it. When a new upstream release breaks a leg, the fix is a pin with its reason in
``ci/legs/airflow-<version>.txt`` (never an edit of the lock by hand), then ``make lock`` again.
"""

from __future__ import annotations

import datetime
import os
import shutil
import sys
from pathlib import Path

from legs import (
    BUILD_TOOLS,
    DIST_LOCK,
    DIST_TOOLS,
    LEGS,
    PIP_QUIET,
    REPO,
    UNLOCKED,
    Leg,
    frozen,
    leg,
    make_venv,
    pin_summary,
    python_label,
    run,
    smoke,
)


def write_lock(venv: Path, lock: Path, header: str) -> None:
    pins = {name: version for name, version in frozen(venv).items() if name not in UNLOCKED}
    lock.write_text(header + "".join(f"{name}=={version}\n" for name, version in sorted(pins.items())))
    print(f"wrote {lock.relative_to(REPO)} ({len(pins)} packages)")


def resolve(venv: Path, python: str, *requirements: str) -> str | None:
    error = make_venv(venv, python)
    if error:
        return error
    # pip resolves afresh here: a constraint left in the environment would only re-read the old lock.
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_CONSTRAINT", "PIP_BUILD_CONSTRAINT")}
    pip = [str(venv / "bin" / "python"), *PIP_QUIET]
    # setuptools and wheel are locked too: the provider's isolated build environment installs them.
    for step in (["--upgrade", *BUILD_TOOLS], list(requirements)):
        if run([*pip, *step], env=env).returncode != 0:
            return f"pip could not install {' '.join(step)}"
    return None


def lock_leg(one: Leg, today: str) -> bool:
    venv = REPO / f".venv-lock-{one.airflow}"
    shutil.rmtree(venv, ignore_errors=True)
    print(f"\n===== Airflow {one.airflow} on Python {one.python}: resolving {one.requirements.name} + [{one.extras}]")
    error = resolve(venv, one.python, "-r", str(one.requirements), f"{REPO}[{one.extras}]")
    if error:
        print(f"Airflow {one.airflow}: {error}; its lock is unchanged", file=sys.stderr)
        return False
    print(f"resolved on Python {python_label(venv)}: {pin_summary(venv)}; running Airflow's CLI smoke")
    passed, output = smoke(venv)
    print(output[-4000:])
    if not passed:
        print(f"Airflow {one.airflow}: the CLI smoke failed on this resolution; its lock is unchanged", file=sys.stderr)
        return False
    header = (
        f"# The Airflow {one.airflow} leg on Python {one.python}: its whole environment as `make lock` resolved it on\n"
        f"# {today} from {one.requirements.name} and the provider's [{one.extras}] extras, with Airflow's CLI smoke\n"
        "# passing (scripts/leg_smoke.py). Every install of this leg uses it as pip constraints (scripts/legs.py).\n"
        "# Never edited by hand: pin in the .txt beside it with the reason, then `make lock`, then `make test`.\n"
    )
    write_lock(venv, one.lock, header)
    shutil.rmtree(venv, ignore_errors=True)
    return True


def lock_dist_tools(today: str) -> bool:
    venv = REPO / ".venv-lock-dist"
    shutil.rmtree(venv, ignore_errors=True)
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    print(f"\n===== the build tools on Python {python}: resolving {DIST_TOOLS.name}")
    error = resolve(venv, python, "-r", str(DIST_TOOLS))
    if error:
        print(f"build tools: {error}; {DIST_LOCK.name} is unchanged", file=sys.stderr)
        return False
    header = (
        f"# The build tools of `make dist` (and of make test's first step) as `make lock` resolved them on {today}\n"
        f"# from {DIST_TOOLS.name} on Python {python}; setuptools and wheel are what the isolated build of the\n"
        "# sdist and wheel uses. scripts/test_legs.py installs them with this file as constraints and checks them.\n"
    )
    write_lock(venv, DIST_LOCK, header)
    shutil.rmtree(venv, ignore_errors=True)
    return True


def main(argv: list[str]) -> int:
    today = datetime.date.today().isoformat()
    versions = [name for name in argv if name != "dist"]
    chosen = [leg(version) for version in versions] if argv else list(LEGS.values())
    results = {one.airflow: lock_leg(one, today) for one in chosen}
    if not argv or "dist" in argv:
        results["build tools"] = lock_dist_tools(today)
    print("\n| lock | result |\n|---|---|")
    for name, ok in results.items():
        print(f"| {name} | {'written' if ok else 'FAILED, unchanged'} |")
    if any(results.values()):
        print("\nThe new locks have not run the suite yet: run `make test` before committing them (git diff ci/).")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
