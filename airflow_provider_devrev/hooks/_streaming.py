"""
Reading a recording as it arrives: its JSON is checked, and its kind read, without holding it whole.

ijson (its C backend) parses the chunks as they pass on their way to storage, so a body that is not the
complete JSON object the contract promises (cut, or garbled by a proxy) is caught before anything is
published, at a few MB of parser state whatever the recording's size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from airflow_provider_devrev.contract import ApiRequest, recording_kind
from airflow_provider_devrev.exceptions import DevRevUnexpectedResponseError


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
        import ijson

        self.request = request
        self._found: list[Any] = ijson.sendable_list()
        self._parser = ijson.items_coro(self._found, "recording")
        self._errors: tuple[type[Exception], ...] = (ijson.JSONError,)
        self.bytes = 0

    def feed(self, chunk: bytes) -> None:
        """Parse one more chunk of the body."""
        self.bytes += len(chunk)
        try:
            self._parser.send(chunk)
        except self._errors as err:
            raise self._not_json(err) from None
        # Only the top-level key matches the prefix; keep nothing else around.
        if len(self._found) > 1:
            del self._found[1:]

    def finish(self) -> str:
        """
        :return: The body's ``recording`` kind.
        :raises DevRevUnexpectedResponseError: the body was not one complete JSON object with a kind.
        """
        try:
            self._parser.close()
        except self._errors as err:
            raise self._not_json(err) from None
        first = self._found[0] if self._found else None
        return recording_kind(self.request, {"recording": first})

    def _not_json(self, err: Exception) -> DevRevUnexpectedResponseError:
        # Only the parser's verdict, never the window of the body its message quotes: yajl cuts that window
        # itself, so a secret echoed in the body would arrive cut, past any masking.
        reason = " ".join(str(err).split("\n")[0].split(".")[0].split())[:80] or type(err).__name__
        return DevRevUnexpectedResponseError(
            f"{self.request.describe()} answered 200 with a body that is not complete JSON after {self.bytes} "
            f"bytes ({reason}); nothing was published",
            status_code=200,
        )
