"""
What the generated recordings of both kinds share: the generator of each recording, the slot its timeline is
written into, and how far a timeline that must grow large has come.
"""

from __future__ import annotations

import hashlib
import random

#: Stands for the timeline in the recording's JSON; the timeline's events are streamed in its place.
TIMELINE_SLOT = "\x00timeline\x00"


def recording_rng(seed: int, version_key: str, session_id: str, key: str) -> random.Random:
    """The generator of one recording: the same ids and seed give the same recording, byte for byte."""
    digest = hashlib.sha256(f"{seed}\x00{version_key}\x00{session_id}\x00{key}".encode()).hexdigest()
    return random.Random(digest)


class TimelineProgress:
    """How much of a timeline has been written, so its generator knows when a large one is large enough."""

    def __init__(self, min_bytes: int) -> None:
        self.min_bytes = min_bytes
        self.bytes = 0

    @property
    def short(self) -> bool:
        return self.bytes < self.min_bytes
