"""
Instructions per poll and per wait, counted by valgrind's callgrind: figures that do not move with the
machine's load, for comparing two versions of the code. (The capacity table's CPU times are what users
see, but on a shared machine one configuration's ratio moved by up to 0.2 between runs.)

    python -m bench.instructions [--provider-path .] [--ops 500]

Each variant runs twice under callgrind, each time in a fresh interpreter, with 100 and 100 + ``--ops``
operations; the difference, divided by ``--ops``, cancels what a run pays once (importing Airflow, the
warm-up). The variants:

- ``poll``: sequential 404 polls of one wait: the minimal loop's ``session.get`` against one
  ``DevRevSessionTrigger`` whose sleep between polls returns at once;
- ``wait``: sequential one-poll waits whose session exists, as the capacity benchmark's contenders run them
  (:mod:`bench.contenders`), with the loop's pool held as in a triggerer holding other waits.

Instructions are not cycles (a cache miss costs more than an add), so this ranks changes; the capacity
table judges the targets. Not part of ``make bench``: under valgrind a run takes about ten minutes. Needs
valgrind (Debian: ``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.contenders import MinimalContender
from bench.harness import PLATFORM, VERSION_KEY, airflow_environment, airflow_home, bench_server, child_cwd

#: Operations of the shorter run; the longer one makes ``--ops`` more.
BASE_OPS = 100
#: (variant, contender) pairs, in table order.
MEASURED = (("poll", "minimal"), ("poll", "devrev"), ("wait", "minimal"), ("wait", "devrev"))
LABELS = {"minimal": "minimal shared-session loop", "devrev": "DevRevSessionTrigger"}


class _Stop(BaseException):
    """Ends a trigger's polling from its fake sleep (not an Exception, so the trigger cannot catch it)."""


async def polls_minimal(base_url: str, ops: int) -> None:
    """``ops`` sequential 404 polls of the minimal contender: its shared session, URL and headers."""
    contender = MinimalContender(poll_interval=2.0, base_url=base_url)
    await contender.start()
    url = contender.prepare("never-1000000")
    for _ in range(ops):
        async with contender.session.get(url, headers=contender.headers) as response:
            await response.read()
            if response.status != 404:
                raise RuntimeError(f"expected 404, got {response.status}")
    await contender.stop()


async def polls_devrev(ops: int) -> None:
    """One ``DevRevSessionTrigger`` making ``ops`` 404 polls, its sleep between them returning at once."""
    from airflow_provider_devrev.triggers.devrev import DevRevSessionTrigger

    made = 0

    async def no_sleep(_: float) -> None:
        nonlocal made
        made += 1
        if made >= ops:
            raise _Stop

    class Trigger(DevRevSessionTrigger):
        sleep = staticmethod(no_sleep)

    trigger = Trigger(
        devrev_conn_id="devrev_default",
        platform=PLATFORM,
        session_id="never-1000000",
        version_key=VERSION_KEY,
        poll_interval=2,
    )
    try:
        async for event in trigger.run():
            raise RuntimeError(f"the session never appears, yet the trigger fired {event}")
    except _Stop:
        pass


async def waits(contender_name: str, base_url: str, ops: int) -> None:
    """``ops`` sequential one-poll waits of a capacity contender, on sessions that exist."""
    from airflow_provider_devrev.hooks._async_transport import shared_session
    from bench.contenders import make_contender

    contender = make_contender(contender_name, poll_interval=2.0, base_url=base_url)
    await contender.start()
    # Sessions whose id has no "-<ms>" suffix exist from the start (bench.server).
    async with shared_session():
        for index in range(ops):
            await contender.wait(contender.prepare(f"s{index}"), lambda found: None)
    await contender.stop()


def child(variant: str, contender: str, ops: int, base_url: str) -> None:
    """What runs under callgrind: Airflow imported, as in a triggerer, then the operations."""
    import airflow.triggers.base  # noqa: F401

    if variant == "wait":
        asyncio.run(waits(contender, base_url, ops))
    elif contender == "minimal":
        asyncio.run(polls_minimal(base_url, ops))
    else:
        asyncio.run(polls_devrev(ops))


def instructions(out_file: Path) -> int:
    """The total instruction count callgrind wrote."""
    match = re.search(r"^summary:\s+(\d+)", out_file.read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no summary line in {out_file}")
    return int(match.group(1))


def counted_run(variant: str, contender: str, ops: int, base_url: str, env: Mapping[str, str], out: Path) -> int:
    """Instructions of one run of ``ops`` operations, in a fresh interpreter under callgrind."""
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        "-m",
        "bench.instructions",
    ]
    command += ["--child", variant, "--contender", contender, "--ops", str(ops), "--base-url", base_url]
    done = subprocess.run(command, cwd=child_cwd(env), env=dict(env), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{variant} {contender} x {ops} failed:\n{done.stderr[-3000:]}")
    return instructions(out)


def measure(ops: int, provider_path: Path | None) -> dict[tuple[str, str], float]:
    """Instructions per operation of every (variant, contender)."""
    results: dict[tuple[str, str], float] = {}
    with bench_server() as server, airflow_home() as home, tempfile.TemporaryDirectory() as scratch:
        env = airflow_environment(home, server.url)
        # Hash randomization changes dict layouts, and so the counts, from one interpreter to the next.
        env["PYTHONHASHSEED"] = "0"
        if provider_path is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(provider_path.resolve()), env["PYTHONPATH"]])
        for variant, contender in MEASURED:
            outs = [Path(scratch, f"{variant}-{contender}-{n}.out") for n in (BASE_OPS, BASE_OPS + ops)]
            # The two runs of a pair in parallel: callgrind counts the same whatever else the machine does.
            with ThreadPoolExecutor(2) as pool:
                short, long = (
                    pool.submit(counted_run, variant, contender, n, server.url, env, out)
                    for n, out in zip((BASE_OPS, BASE_OPS + ops), outs, strict=True)
                )
                results[variant, contender] = (long.result() - short.result()) / ops
            print(f"  {variant:<4} {contender:<8} {results[variant, contender]:>10,.0f} instructions", flush=True)
    return results


def table(results: Mapping[tuple[str, str], float]) -> str:
    """Markdown: instructions per operation, and the trigger's over the minimal loop's."""
    lines = ["| operation | contender | instructions | vs minimal |", "|---|---|---:|---:|"]
    for variant, contender in MEASURED:
        value = results[variant, contender]
        ratio = "" if contender == "minimal" else f"{value / results[variant, 'minimal']:.2f}x"
        what = "one 404 poll" if variant == "poll" else "one wait (one poll, found)"
        lines.append(f"| {what} | {LABELS[contender]} | {value:,.0f} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--ops", type=int, default=500, help="operations counted, beyond the first 100")
    parser.add_argument("--provider-path", type=Path, help="import the provider from here (e.g. . for this tree)")
    parser.add_argument("--child", choices=("poll", "wait"), help=argparse.SUPPRESS)
    parser.add_argument("--contender", choices=("minimal", "devrev"), help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.contender, args.ops, args.base_url)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    print(table(measure(args.ops, args.provider_path)))


if __name__ == "__main__":
    main()
