"""
Reading a recording as it arrives: its JSON is checked, and its kind read, without holding it whole.

A streaming scanner (:mod:`~airflow_provider_devrev.hooks._json_scan`) checks the chunks as they pass on
their way to storage, so a body that is not the complete JSON object the contract promises (cut, or garbled
by a proxy) is caught before anything is published. Its state is the nesting and at most 1 KiB of the
top-level ``recording`` value, never a token whole: the memory is the same for any size or shape of recording
(one 100 MB string, a million tiny events).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from airflow_provider_devrev.contract import ApiRequest, recording_kind
from airflow_provider_devrev.exceptions import DevRevUnexpectedResponseError
from airflow_provider_devrev.hooks._json_scan import JsonError, JsonScanner


@dataclasses.dataclass(frozen=True)
class StreamedRecording:
    """What :meth:`DevRevHook.stream_session_recording` wrote: the body's size and its ``recording`` kind."""

    bytes: int
    recording: str


def stream_checked(
    call_streaming: Callable[[ApiRequest, Callable[[bytes], Any]], int],
    request: ApiRequest,
    write: Callable[[bytes], Any],
) -> StreamedRecording:
    """
    Stream the answer to ``request`` into ``write`` with ``call_streaming`` (the hook's), checking its JSON on
    the way; see :meth:`~airflow_provider_devrev.hooks.devrev.DevRevHook.stream_session_recording`.
    """
    scanner = RecordingScanner(request)

    def checked_write(chunk: bytes) -> None:
        scanner.feed(chunk)
        write(chunk)

    call_streaming(request, checked_write)
    return StreamedRecording(bytes=scanner.bytes, recording=scanner.finish())


class RecordingScanner:
    """
    Feed it a ``sessions.data.get`` body chunk by chunk; :meth:`finish` says whether it was one whole JSON
    object and returns its top-level ``recording`` kind.

    :param request: The request that is being answered, for the error messages.
    """

    def __init__(self, request: ApiRequest) -> None:
        self.request = request
        self._scanner = JsonScanner("recording")
        self.bytes = 0

    def feed(self, chunk: bytes) -> None:
        """Check one more chunk of the body."""
        self.bytes += len(chunk)
        try:
            self._scanner.feed(chunk)
        except JsonError as err:
            raise self._not_json(err) from None

    def finish(self) -> str:
        """
        :return: The body's ``recording`` kind.
        :raises DevRevUnexpectedResponseError: the body was not one complete JSON object with a kind.
        """
        try:
            self._scanner.finish()
        except JsonError as err:
            raise self._not_json(err) from None
        # A kind that is not a short string arrives described (NotAString), which recording_kind refuses.
        return recording_kind(self.request, {"recording": self._scanner.picked})

    def _not_json(self, err: JsonError) -> DevRevUnexpectedResponseError:
        # The scanner's messages never quote the body (a secret echoed there would be shown cut, past masking).
        return DevRevUnexpectedResponseError(
            f"{self.request.describe()} answered 200 with a body that is not complete JSON after {self.bytes} "
            f"bytes ({err}); nothing was published",
            status_code=200,
        )
