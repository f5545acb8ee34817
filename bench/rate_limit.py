"""
The shared rate limit: 1,000 deferred waits (``DevRevSessionTrigger``) on one event loop, one token, against the
simulator's per-token window, with the shared gate off (each wait learns of a 429 on its own, as before issue 29)
and on.

    python -m bench.rate_limit [--waits 1000] [--poll 5] [--window 20] [--limit 100/1] [--runs 1]

Each row runs in fresh processes: a simulator (this module with ``--serve``: every wait's session appears at a
seeded moment within ``--window`` seconds, the token limited to ``--limit`` requests per window) and the
measuring loop (``--measure``, a fresh interpreter, which tells the simulator when to start and flips
``airflow_provider_devrev.hooks._rate_gate.ENABLED`` for the "off" rows, the benchmark's only use of it). Every
wait starts at once, polls every ``--poll`` seconds and has a deadline ``--window`` + 60 s away.

Columns: requests the simulator received and the 429s among them; waits that did not end with their session
(failed or timed out); detection lag (event received minus the moment the session appeared), p50 and p99. The
unthrottled rows use a limit no poll reaches, so they show what the gate costs when DevRev never says 429.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.harness import PLATFORM, TOKEN, VERSION_KEY, airflow_environment, airflow_home, child_cwd
from bench.stats import markdown_table, percentile

#: A limit no configuration of this benchmark reaches: the "not throttled" rows.
UNTHROTTLED = "1000000/1"


def session_id(index: int) -> str:
    return f"rl-{index:06d}"


def offsets(count: int, window: float, seed: int = 29) -> list[float]:
    """When each wait's session appears, in seconds after the start (the same for every row)."""
    rng = random.Random(seed)
    return [rng.uniform(0, window) for _ in range(count)]


def serve(args: argparse.Namespace) -> None:
    """The simulator process: prints ``{"url", "start"}``, then one JSON line of statistics per ``stats`` line in."""
    from airflow_provider_devrev.testing import DevRevSimulator

    count, _, per = args.limit.partition("/")
    simulator = DevRevSimulator(token=TOKEN, seed_data=False, clock=time.time, rate_limit=(int(count), float(per)))
    simulator.start()
    print(json.dumps({"url": simulator.url}), flush=True)
    try:
        for line in sys.stdin:
            if line.startswith("start "):
                # The measuring process is ready: its sessions appear from the moment it names.
                start = float(line.split()[1])
                for index, offset in enumerate(offsets(args.waits, args.window)):
                    session = simulator.make_session("mobile", platform=PLATFORM, session_id=session_id(index))
                    simulator.add_session(session, version_key=VERSION_KEY, appear_at=start + offset)
                print(json.dumps({"ok": True}), flush=True)
            elif line.strip() == "stats":
                statuses = Counter(r.status for r in simulator.requests)
                print(json.dumps({"requests": len(simulator.requests), "429": statuses.get(429, 0)}), flush=True)
    finally:
        simulator.stop()


async def measure_waits(args: argparse.Namespace) -> dict[str, Any]:
    from airflow_provider_devrev.hooks import _rate_gate
    from airflow_provider_devrev.triggers.devrev import DevRevSessionTrigger

    _rate_gate.ENABLED = args.gate == "on"
    # Airflow is imported: name the start, and wait until the simulator has the sessions.
    start = time.time() + 1.0
    print(f"READY {start}", flush=True)
    if sys.stdin.readline().strip() != "go":
        raise RuntimeError("the benchmark did not start the run")
    appear = [start + offset for offset in offsets(args.waits, args.window)]
    ended: list[tuple[str, float]] = [("", 0.0)] * args.waits

    async def wait(index: int) -> None:
        trigger = DevRevSessionTrigger(
            devrev_conn_id="devrev_default",
            platform=PLATFORM,
            session_id=session_id(index),
            version_key=VERSION_KEY,
            poll_interval=args.poll,
            end_time=start + args.window + 60,
        )
        async for event in trigger.run():
            ended[index] = (event.payload["status"], time.time())

    await asyncio.sleep(max(0.0, start - time.time()))
    await asyncio.gather(*(wait(index) for index in range(args.waits)))
    lags = [when - appear[i] for i, (status, when) in enumerate(ended) if status == "success"]
    return {
        "failed": sum(status != "success" for status, _ in ended),
        "lag_p50": percentile(lags, 50),
        "lag_p99": percentile(lags, 99),
    }


def measure(args: argparse.Namespace) -> None:
    import logging

    # A thousand waits' retry lines would cost the "off" rows more than their polls.
    logging.disable(logging.WARNING)
    result = asyncio.run(measure_waits(args))
    Path(args.out).write_text(json.dumps(result))


def measured(server: subprocess.Popen[str], args: list[str], env: dict[str, str], log_dir: Path) -> dict[str, Any]:
    """Run the measuring process; when it is ready, have the simulator add its sessions, then let it go."""
    assert server.stdin is not None
    assert server.stdout is not None
    out = log_dir / f"rate-limit-{len(list(log_dir.iterdir()))}.json"
    command = [sys.executable, "-m", "bench.rate_limit", "--measure", *args, "--out", str(out)]
    with (log_dir / f"{out.stem}.log").open("w") as log:
        child = subprocess.Popen(
            command, cwd=child_cwd(env), env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True
        )
        assert child.stdin is not None
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("READY "):
                server.stdin.write(f"start {line.split()[1]}\n")
                server.stdin.flush()
                server.stdout.readline()
                child.stdin.write("go\n")
                child.stdin.flush()
                break
        child.stdout.read()
        if child.wait() != 0:
            raise RuntimeError(f"the measuring process failed; see {log.name}")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def row(label: str, gate: str, limit: str, args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    with airflow_home() as home:
        command = [sys.executable, "-m", "bench.rate_limit", "--serve", "--waits", str(args.waits)]
        command += ["--window", str(args.window), "--limit", limit]
        env = airflow_environment(home, "http://127.0.0.1:1")
        server = subprocess.Popen(
            command, cwd=child_cwd(env), env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        try:
            assert server.stdin is not None
            assert server.stdout is not None
            ready = json.loads(server.stdout.readline())
            env = airflow_environment(home, ready["url"])
            shape = ["--waits", str(args.waits), "--window", str(args.window), "--poll", str(args.poll)]
            result = measured(server, [*shape, "--gate", gate], env, log_dir)
            server.stdin.write("stats\n")
            server.stdin.flush()
            stats = json.loads(server.stdout.readline())
        finally:
            server.terminate()
            server.wait(timeout=30)
    return {
        "row": label,
        "limit": limit,
        "gate": gate,
        "requests sent": stats["requests"],
        "429s": stats["429"],
        "waits failed": result["failed"],
        "lag p50": result["lag_p50"],
        "lag p99": result["lag_p99"],
    }


def cells(figures: dict[str, Any]) -> list[str]:
    """One row's figures as the table prints them."""
    return [
        figures["row"],
        f"{figures['limit']} s",
        f"gate {figures['gate']}",
        f"{figures['requests sent']:,}",
        f"{figures['429s']:,}",
        str(figures["waits failed"]),
        f"{figures['lag p50']:.2f} s",
        f"{figures['lag p99']:.2f} s",
    ]


HEADERS = [
    "row",
    "limit (requests/window)",
    "shared gate",
    "requests sent",
    "429s",
    "waits failed",
    "lag p50",
    "lag p99",
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--waits", type=int, default=1000)
    parser.add_argument("--poll", type=float, default=5.0)
    parser.add_argument("--window", type=float, default=20.0, help="sessions appear within this many seconds")
    parser.add_argument("--limit", default="100/1", help="the token's limit, REQUESTS/SECONDS (default 100/1)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--gate", choices=("on", "off"), default="on", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args)
        return
    if args.measure:
        measure(args)
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="devrev-bench-rate-") as logs:
        for label, limit in (("throttled", args.limit), ("not throttled", UNTHROTTLED)):
            for gate in ("off", "on"):
                rows.append(row(label, gate, limit, args, Path(logs)))
                print(" | ".join(cells(rows[-1])), file=sys.stderr, flush=True)
    print(f"{args.waits:,} deferred waits on one loop, one token, polling every {args.poll:g} s; sessions appear")
    print(f"within {args.window:g} s; each wait's deadline {args.window + 60:g} s after the start.\n")
    print(markdown_table(HEADERS, [cells(figures) for figures in rows]))
    keep_figures(rows)


def keep_figures(rows: list[dict[str, Any]]) -> None:
    """Keep the rows where ``bench/plots.py`` draws the rate-limit plot from (``make bench-plots``)."""
    from bench.plots import RATE_LIMIT_FIGURES

    figures = {
        "title": "1,000 deferred waits on one loop, one token",
        "rows": [
            {
                "label": f"{each['row']}, gate {each['gate']}",
                "requests sent": each["requests sent"],
                "429s": each["429s"],
                "waits failed": each["waits failed"],
                "lag p50 (s)": each["lag p50"],
                "lag p99 (s)": each["lag p99"],
            }
            for each in rows
        ],
    }
    RATE_LIMIT_FIGURES.parent.mkdir(parents=True, exist_ok=True)
    RATE_LIMIT_FIGURES.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
