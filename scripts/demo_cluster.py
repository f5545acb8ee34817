"""
The distributed deployment's scenarios (``tests/deployment/test_cluster.py``), with their figures.

PostgreSQL, Redis and an S3 server (moto) start on free ports on 127.0.0.1, then Airflow with the
CeleryExecutor: api-server, scheduler, dag-processor, two triggerers and two Celery workers. The scenarios:

2. (first) the triage example's asset watcher across a SIGKILL and a SIGSTOP/SIGCONT of its triggerer;
1. triggerer failover under load: 44 mapped deferrable sensors over both triggerers, the busier one
   SIGKILLed while the sessions appear over the next minute;
4. token rotation in the metadata DB while 10 deferrable sensors wait;
3. the crash-export example writing to S3 on one worker and read back on the other (its lineage the final
   object); a failed export;
5. the secret sweep: pg_dump, Redis, every file and log, every object.

They are the tests themselves, run with pytest, so the demo shows exactly what CI checks. Run it with
``make demo-cluster``; 7 to 10 minutes on a 2-core machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from _demo import step  # noqa: E402

TEST = "tests/deployment/test_cluster.py"


def main() -> int:
    step(f"Running the distributed deployment's scenarios ({TEST})")
    with tempfile.TemporaryDirectory(prefix="devrev-cluster-demo-") as folder:
        figures_file = Path(folder) / "figures.json"
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-m", "deployment", "-q", "-s", TEST],
            cwd=REPO,
            env={**os.environ, "DEVREV_CLUSTER_FIGURES": str(figures_file)},
            check=False,
        )
        elapsed = time.monotonic() - started
        figures = json.loads(figures_file.read_text()) if figures_file.exists() else {}
    step(f"Figures (pytest exit status {done.returncode}, {elapsed:.0f} s in all)")
    for scenario, values in figures.items():
        if isinstance(values, dict):
            print(f"\n{scenario}:")
            for key, value in values.items():
                print(f"  {key.replace('_', ' '):<34} {value}")
        else:
            print(f"{scenario.replace('_', ' '):<36} {values}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
