"""
The daily export example against the local DevRev simulator, on Airflow's embedded SQLite DB.

1. Start the DevRev simulator on 127.0.0.1 with a day of extra sessions on 2025-06-01 (UTC), including a
   crash at exactly 00:00:00 (which belongs to that day) and one at 2025-06-02T00:00:00 (which does not).
2. ``airflow dags test example_devrev_crash_export 2025-06-02``: a manual run at midnight of 2025-06-02 gets the
   data interval that just ended, 2025-06-01; each
   platform's crash sessions are written as JSON Lines under ``.airflow-demo/exports``.
3. Check the files against what the simulator holds, and print the summary.

Run it with ``make demo-export``.
"""

from __future__ import annotations

import json
import os
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _demo import airflow, airflow_environment, step

REPO = Path(__file__).resolve().parent.parent
HOME = Path(os.environ.get("AIRFLOW_HOME", REPO / ".airflow-demo")).resolve()
EXPORTS = HOME / "exports"
DAG_ID = "example_devrev_crash_export"
DAY = datetime(2025, 6, 1, tzinfo=UTC)
VERSION_KEY = "com.acme.shop@5.2.0"

os.environ.update(airflow_environment(HOME, REPO))
os.environ["DEVREV_EXPORT_BASE"] = EXPORTS.as_uri()


def add_day_of_sessions(sim) -> None:  # type: ignore[no-untyped-def]
    """80 sessions spread over DAY and its neighbours, a fifth of them crashes, plus the two edge cases."""
    rng = random.Random(20250601)
    for number in range(80):
        moment = DAY + timedelta(seconds=rng.randint(-6 * 3600, 30 * 3600))
        platform = rng.choice(("android", "ios"))
        crash = rng.random() < 0.2
        session = sim.make_session(
            "mobile", platform=platform, session_id=f"demo-{number:03d}", created_at=moment, is_crash=crash
        )
        sim.add_session(session, version_key=VERSION_KEY)
    for session_id, moment in (("demo-edge-start", DAY), ("demo-edge-end", DAY + timedelta(days=1))):
        edge = sim.make_session("mobile", platform="android", session_id=session_id, created_at=moment, is_crash=True)
        sim.add_session(edge, version_key=VERSION_KEY)


def expected_ids(sim, platform: str) -> set[str]:  # type: ignore[no-untyped-def]
    """Crash sessions of that platform and app version created in [DAY, DAY + 1 day), from the simulator."""
    end = DAY + timedelta(days=1)
    return {
        s["session_id"]
        for s in sim.sessions
        if s["platform"] == platform
        and s["is_crash"]
        and s["device_metadata"]["app_version"] == "5.2.0"
        and DAY <= datetime.fromisoformat(s["created_at"].replace("Z", "+00:00")) < end
    }


def main() -> None:
    from airflow_provider_devrev.testing import DevRevSimulator

    HOME.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with DevRevSimulator(page_size=10) as sim:
        os.environ["AIRFLOW_CONN_DEVREV_DEFAULT"] = sim.connection_json()
        add_day_of_sessions(sim)
        step(f"DevRev simulator on {sim.url}: seed data plus 82 sessions around {DAY:%Y-%m-%d}; 10 per page")

        step(f"airflow db migrate (embedded SQLite in {HOME})")
        airflow("db", "migrate", log=HOME / "db-migrate.log")
        print("done")

        run_after = DAY + timedelta(days=1)
        step(f"airflow dags test {DAG_ID} {run_after:%Y-%m-%d} (data interval: {DAY:%Y-%m-%d}, the day before)")
        dag_log = HOME / "export-dags-test.log"
        airflow("dags", "test", DAG_ID, f"{run_after:%Y-%m-%d}", log=dag_log)
        print(f"done (full log: {dag_log})")

        step("The exported files, checked against the simulator")
        problems = []
        for platform in ("android", "ios"):
            path = EXPORTS / f"{DAY:%Y-%m-%d}" / f"{platform}-crash-sessions.jsonl"
            sessions = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
            got = [s["session_id"] for s in sessions]
            want = expected_ids(sim, platform)
            print(f"{path}: {len(got)} sessions; expected {len(want)}; duplicates {len(got) - len(set(got))}")
            if set(got) != want or len(got) != len(set(got)):
                problems.append(platform)
        android = (EXPORTS / f"{DAY:%Y-%m-%d}" / "android-crash-sessions.jsonl").read_text(encoding="utf-8")
        print(f"crash at exactly {DAY:%Y-%m-%d} 00:00:00 exported: {'demo-edge-start' in android}")
        print(f"crash at exactly the next midnight exported (must be False): {'demo-edge-end' in android}")
        lists = [r for r in sim.requests if r.path == "/observability.sessions.list"]
        print(f"list requests the simulator answered: {len(lists)} (POST with is_crash and a created_at range)")
    print(f"wall time: {time.monotonic() - started:.1f} s")
    if problems:
        raise SystemExit(f"exported sessions differ from the simulator's for {problems}")


if __name__ == "__main__":
    main()
