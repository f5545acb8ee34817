"""Generated recordings of the DevRev simulator: what ``sessions.data.get`` and ``developer-info.get`` serve.

Each recording follows from its session, deterministically (the simulator's seed, the version key, the
session id and the recording or tab id seed its generator), so a test can ask the simulator for the exact
bytes it serves (:meth:`~airflow_provider_devrev.testing.simulator.DevRevSimulator.recording_chunks`):

- a mobile session's last recording ends as the session did: an Android crash has a Kotlin/Java stack trace
  in ``observability_sessions_log_data``, an iOS crash a Swift crash report, an ANR the main thread's trace;
  its ``recording_events_timeline`` is a launch, screens, taps, swipes and API calls, ending with the
  ``exception`` (or ``anr``) event on the screen where it happened. Earlier recordings end with a pause.
- a web tab's timeline is navigations, clicks (rage and dead ones as the session counts them), form
  changes and performance captures, ending with ``recording_stopped``; its developer info has the session's
  console errors (JavaScript stack traces) and its failed network calls (the 4xx and 5xx it counts).

A recording can be made large (:meth:`~airflow_provider_devrev.testing.simulator.DevRevSimulator.
inflate_recording`), generated while it is sent, so tens of MB cost the simulator no memory, in one of
three :data:`SHAPES`: more of the same user activity before the ending (``activity``); a crash or ANR log
repeated into one long string (``crash_log``: one JSON string of that size, the worst case for a parser
that holds a string token whole); or a timeline of tiny events (``tiny_events``: a frame event of about
50 bytes each, before the usual activity, the worst case for one that pays per token).
"""

from __future__ import annotations

import itertools
import json
from typing import TYPE_CHECKING, Any

from airflow_provider_devrev.testing.mobile_recording import mobile_events, mobile_recording
from airflow_provider_devrev.testing.timeline import TIMELINE_SLOT, TimelineProgress, recording_rng
from airflow_provider_devrev.testing.web_recording import developer_info, web_events, web_recording

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["CHUNK_BYTES", "SHAPES", "developer_info", "recording_chunks", "recording_rng"]

#: Bytes per chunk of a generated body.
CHUNK_BYTES = 1 << 16
#: How an inflated recording grows (see the module's docstring).
SHAPES = ("activity", "crash_log", "tiny_events")
#: Stands for the crash log's text in the recording's JSON when the log is what grows.
LOG_SLOT = "\x00log\x00"


def recording_chunks(
    session: dict[str, Any], key: str, *, seed: int, version_key: str, min_bytes: int = 0, shape: str = "activity"
) -> Iterator[bytes]:
    """
    The ``sessions.data.get`` body of ``session``'s recording (mobile) or tab (web) ``key``, in chunks.

    :param session: the stored session.
    :param key: one of its ``recording_ids`` or ``tab_ids``.
    :param seed: the simulator's seed.
    :param version_key: the session's version key.
    :param min_bytes: grow the body to at least this many bytes, in ``shape``.
    :param shape: one of :data:`SHAPES`; ``crash_log`` grows only a recording that has a crash or ANR log.
    """
    rng = recording_rng(seed, version_key, session["session_id"], key)
    progress = TimelineProgress(min_bytes)
    # The usual activity counts towards min_bytes only when activity is what grows.
    activity = progress if shape == "activity" else TimelineProgress(0)
    if session["type"] == "web":
        recording = web_recording(rng, session, key)
        events = web_events(rng, session, activity)
    else:
        recording, exception = mobile_recording(rng, session, key)
        events = mobile_events(rng, session, key, activity, exception)
    if shape == "tiny_events":
        events = itertools.chain(_tiny_events(progress), events)
    log_data = recording.get("observability_sessions_log_data")
    log = None
    if shape == "crash_log" and min_bytes and log_data:
        log, log_data["value"] = log_data["value"], LOG_SLOT
    text = json.dumps(recording, ensure_ascii=False, separators=(",", ":"))
    if log is not None:
        before_log, text = text.split(json.dumps(LOG_SLOT)[1:-1])
        yield from _long_string(before_log, log, min_bytes)
    head, tail = text.split(json.dumps(TIMELINE_SLOT))
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    buffer = [head]
    size = len(head)
    for event in events:
        piece = encode(event)
        buffer.append(piece)
        buffer.append(",")
        size += len(piece) + 1
        progress.bytes += len(piece) + 1
        if size >= CHUNK_BYTES:
            yield "".join(buffer).encode()
            buffer, size = [], 0
    if buffer and buffer[-1] == ",":
        buffer.pop()  # the last event's separator (the timeline always has events)
    buffer.append(tail)
    yield "".join(buffer).encode()


def _tiny_events(progress: TimelineProgress) -> Iterator[dict[str, Any]]:
    frame = 0
    while progress.short:
        yield {"event_name": "frame", "timestamp_offset_ms": frame * 16}
        frame += 1


def _long_string(before: str, log: str, min_bytes: int) -> Iterator[bytes]:
    """``before``, then the JSON-escaped text of ``log`` repeated until it is ``min_bytes`` long, unterminated."""
    # The same escaped block, sent again and again: escapes (newlines, tabs) all through the string, as in a
    # real log, at no cost to the simulator.
    block = json.dumps("\n" + log, ensure_ascii=False)[1:-1].encode()
    block *= max(1, CHUNK_BYTES // len(block))
    first = before.encode() + json.dumps(log, ensure_ascii=False)[1:-1].encode()
    yield first
    size = len(first) - len(before.encode())
    while size < min_bytes:
        yield block
        size += len(block)
