"""
Where the trigger's CPU goes: ``py-spy record`` of one capacity measurement of ``DevRevSessionTrigger``,
summarized into a few buckets (retries, connection lookup, HTTP client, ...) and the hottest own frames.

py-spy samples from outside the process (it needs ptrace permission: root, or CAP_SYS_PTRACE), so the
measured process runs unmodified; sampling does slow it a little, so its figures are not reported.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import REPO, BenchServer, child_cwd
from bench.stats import markdown_table

#: Bucket name -> substrings of a frame ("function (file:line)") that put a sample in it (inclusive).
BUCKETS: dict[str, tuple[str, ...]] = {
    "retry machinery (tenacity)": ("tenacity/",),
    "connection lookup (Airflow, once per trigger)": ("get_async_connection", "aget_settings"),
    "HTTP client (aiohttp)": ("aiohttp/",),
    "logging (structlog)": ("structlog/", "logging/__init__"),
    "building requests, parsing answers (provider)": ("contract.py",),
}


@dataclass
class Profile:
    """A summarized py-spy profile."""

    waits: int
    samples: int
    buckets: dict[str, float] = field(default_factory=dict)
    hottest: list[tuple[str, float]] = field(default_factory=list)
    error: str = ""

    def markdown(self) -> str:
        """The profile as markdown (or why there is none)."""
        title = f"Profile of `DevRevSessionTrigger` at {self.waits:,} waits (py-spy, {self.samples:,} samples)"
        if self.error:
            return f"{title}: not taken ({self.error})."
        buckets = markdown_table(
            ["where the samples are (inclusive; buckets overlap)", "share"],
            [[name, f"{share:.0%}"] for name, share in self.buckets.items()],
        )
        hottest = markdown_table(
            ["hottest frames (self time)", "share"], [[f"`{frame}`", f"{share:.1%}"] for frame, share in self.hottest]
        )
        return f"{title}:\n\n{buckets}\n\n{hottest}"


def py_spy() -> str | None:
    """The py-spy executable next to this interpreter, or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def profile_capacity(
    server: BenchServer, env: Mapping[str, str], log_dir: Path, waits: int, poll_interval: float
) -> Profile:
    """Record one capacity measurement of the DevRev trigger and summarize it."""
    executable = py_spy()
    if executable is None:
        return Profile(waits, 0, error="py-spy is not installed")
    raw = log_dir / f"py-spy-{os.getpid()}.txt"
    command = [executable, "record", "--rate", "200", "--format", "raw", "--output", str(raw), "--"]
    command += [sys.executable, "-m", "bench.capacity_worker", "--contender", "devrev", "--waits", str(waits)]
    command += ["--poll-interval", str(poll_interval), "--base-url", server.url]
    command += ["--control-port", str(server.control_port), "--out", str(raw.with_suffix(".json"))]
    with raw.with_suffix(".log").open("w") as sink:
        done = subprocess.run(
            command, cwd=child_cwd(env), env=dict(env), stdout=sink, stderr=subprocess.STDOUT, check=False
        )
    if done.returncode != 0 or not raw.exists():
        return Profile(waits, 0, error=f"py-spy exited with {done.returncode}; see {raw.with_suffix('.log')}")
    return summarize(waits, raw.read_text().splitlines())


def summarize(waits: int, lines: Iterable[str]) -> Profile:
    """Bucket shares and the hottest own frames of py-spy's raw (collapsed stack) output."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        # Only what the event loop's process does for the waits: not the interpreter's start-up imports.
        if not any("Handle._run" in frame for frame in frames):
            continue
        total += count
        for name, needles in BUCKETS.items():
            if any(needle in frame for frame in frames for needle in needles):
                inclusive[name] += count
        own[short_frame(frames[-1])] += count
    if not total:
        return Profile(waits, 0, error="no samples in the event loop")
    return Profile(
        waits,
        total,
        buckets={name: inclusive[name] / total for name in BUCKETS},
        hottest=[(frame, count / total) for frame, count in own.most_common(10)],
    )


def short_frame(frame: str) -> str:
    """``function (file:line)`` with the site-packages, standard library or repository prefix dropped."""
    return _PREFIX.sub("(", frame)


_PREFIX = re.compile(r"\([^()]*(?:site-packages/|/python3\.\d+/|" + re.escape(f"{REPO}/") + ")")
