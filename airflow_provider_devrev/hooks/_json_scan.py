"""
Whether a stream of bytes is one complete JSON document, checked chunk by chunk in bounded memory, with one
top-level key's value picked out on the way.

:class:`JsonScanner` is a state machine over the bytes as they arrive. What it keeps is the nesting (one byte
per open array or object, at most :data:`MAX_DEPTH` of them), where it is inside the current token (a string's
escape, a number's part, a literal's remaining letters) and at most 1 KiB of the picked value and of a top-level key:
never a token's content, so a 100 MB string costs what a short one does. It is fast enough in pure Python
because it seldom steps byte by byte: compiled regular expressions skip a string's plain bytes and escapes,
and whole runs of flat values (scalars, and arrays or objects of scalars) inside a container, at C speed.

What it accepts is RFC 8259 JSON in UTF-8, which is what ``json.loads`` accepts from the same bytes decoded as
UTF-8 (strictly: no byte-order mark, no encoded surrogates), with these differences, on purpose:

- ``NaN``, ``Infinity`` and ``-Infinity`` (a Python extension, not JSON) are refused;
- nesting deeper than :data:`MAX_DEPTH` is refused (``json.loads`` gives up far sooner, with a
  ``RecursionError``), and integers of any length are accepted (``json.loads`` refuses one of more than
  4,300 digits, Python's limit on converting text to ``int``).

Like ``json.loads`` it accepts ``\\u`` escapes of lone surrogates (the JSON grammar allows them, and a reader
of the file gets what ``json.loads`` gives), ``\\u0000`` and repeated keys (the last one's value is picked,
as ``json.loads`` keeps the last).
"""

from __future__ import annotations

import codecs
import functools
import json
import re
from typing import Any

#: The deepest nesting accepted: the one part of the state that grows with the document, so it is bounded.
MAX_DEPTH = 10_000
#: The most bytes of the picked value kept (before escapes are decoded).
MAX_PICKED_BYTES = 1024

_WS = rb"[ \t\n\r]*+"
_CHARS = rb'[^"\\\x00-\x1f]*+'
_ESCAPE = rb'\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})'
_STRING = rb'"' + _CHARS + rb"(?:" + _ESCAPE + _CHARS + rb")*+" + rb'"'
_NUMBER = rb"-?+(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?+(?:[eE][+-]?+[0-9]++)?+"
_SCALAR = rb"(?:" + _STRING + rb"|" + _NUMBER + rb"|true|false|null)"


def _containers_of(value: bytes) -> bytes:
    """A value, or an array or object whose items are that value."""
    pair = _STRING + _WS + rb":" + _WS + value
    return (
        rb"(?:"
        + value
        + (rb"|\{" + _WS + rb"(?:" + pair + _WS + rb"(?:," + _WS + pair + _WS + rb")*+)?+\}")
        + (rb"|\[" + _WS + rb"(?:" + value + _WS + rb"(?:," + _WS + value + _WS + rb")*+)?+\]")
        + rb")"
    )


#: A value nested at most two deep (a timeline event with its coordinates, say): runs of these are skipped whole.
_FLAT = _containers_of(_containers_of(_containers_of(_SCALAR)))

_SKIP_WS = re.compile(_WS)
_SKIP_CHARS = re.compile(_CHARS + rb"(?:" + _ESCAPE + _CHARS + rb")*+")
_SKIP_DIGITS = re.compile(rb"[0-9]*+")
#: In an array: flat values, each with its comma, then maybe a last one and the closing bracket.
_ARRAY_RUN = re.compile(rb"(?:" + _WS + _FLAT + _WS + rb",)*+(?P<end>" + _WS + _FLAT + _WS + rb"\])?+")


@functools.cache
def _object_run(plain_keys_except: bytes | None) -> re.Pattern[bytes]:
    """Members with flat values, each with its comma, then maybe a last one and the closing brace.

    :param plain_keys_except: in the top-level object, the picked key: a run must stop before it (and before
        any key with an escape, which might spell it), so that the scanner sees it.
    """
    key = _STRING if plain_keys_except is None else rb'"(?!' + re.escape(plain_keys_except) + rb'")[^"\\\x00-\x1f]*+"'
    member = key + _WS + rb":" + _WS + _FLAT
    return re.compile(rb"(?:" + _WS + member + _WS + rb",)*+(?P<end>" + _WS + member + _WS + rb"\})?+")


_OBJECT_RUN = _object_run(None)

# Where the scan is. Between tokens:
_VALUE, _VALUE_OR_END, _KEY, _KEY_OR_END, _COLON, _AFTER = range(6)
# Inside a token:
_STRING_BODY, _ESCAPED, _HEX, _IN_NUMBER, _LITERAL = range(6, 11)
# A number's parts: after its minus, its leading zero, its integer digits, its point, its fraction digits, its
# e, its exponent's sign, its exponent digits. It may end only after a digit.
_MINUS, _ZERO, _INT, _POINT, _FRACTION, _E, _SIGN, _EXPONENT = range(8)
_NUMBER_ENDS = frozenset((_ZERO, _INT, _FRACTION, _EXPONENT))
_DIGIT_RUNS = frozenset((_INT, _FRACTION, _EXPONENT))
_ESCAPES = frozenset(b'"\\/bfnrt')
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_LITERALS = {ord("t"): b"rue", ord("f"): b"alse", ord("n"): b"ull"}
_CLOSING = {ord("["): ord("]"), ord("{"): ord("}")}
_KINDS = {ord("{"): "an object", ord("["): "an array", ord("t"): "true", ord("f"): "false", ord("n"): "null"}


class JsonError(ValueError):
    """The bytes are not one complete JSON document. The message never quotes them (they may hold a secret)."""


class NotAString:
    """The picked key's value when it is not a short string: what it was instead (``repr`` says)."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __repr__(self) -> str:
        return f"<{self.what}>"


class JsonScanner:
    """
    Feed it a document chunk by chunk (:meth:`feed`), then call :meth:`finish`; either raises
    :class:`JsonError` as soon as the bytes cannot be the start of a JSON document, or, at :meth:`finish`, if
    they are not a whole one.

    :param pick: A key of the top-level object whose value to keep (:attr:`picked`).
    """

    def __init__(self, pick: str) -> None:
        self._pick = pick
        self._top_run = _object_run(pick.encode())
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._stack = bytearray()
        self._state = _VALUE
        self._part = _MINUS  # of a number
        self._letters = b""  # of a literal, still to come
        self._hex = 0  # digits of a \u escape still to come
        self._key_is_picked = False  # the top-level key just read is the picked one
        self._in_key = False  # the string being read is a key
        self._keep: bytearray | None = None  # the string being kept (a top-level key, or the picked value)
        #: Bytes fed so far.
        self.bytes = 0
        #: The picked key's value (the last one, if repeated): a string of at most :data:`MAX_PICKED_BYTES`,
        #: or a :class:`NotAString`; ``None`` while the key has not been seen.
        self.picked: str | NotAString | None = None

    def feed(self, data: bytes) -> None:
        """Scan one more chunk."""
        try:
            self._utf8.decode(data)
        except UnicodeDecodeError:
            raise JsonError(f"invalid UTF-8 within bytes {self.bytes}-{self.bytes + len(data)}") from None
        pos, end = 0, len(data)
        while pos < end:
            state = self._state
            if state >= _STRING_BODY:
                if state == _IN_NUMBER:
                    pos = self._number(data, pos, end)
                elif state == _LITERAL:
                    pos = self._literal(data, pos)
                else:
                    pos = self._string(data, pos, end)
                continue
            pos = _SKIP_WS.match(data, pos).end()  # type: ignore[union-attr]
            if pos == end:
                break
            # A run's values may nest three levels below the open container, uncounted: near the cap the
            # state machine takes them, one level at a time, so the cap holds however the body was cut.
            if state <= _KEY_OR_END and 0 < len(self._stack) <= MAX_DEPTH - 3:
                ran = self._run(data, pos, state)
                if ran > pos:
                    pos = ran
                    continue
            pos = self._between_tokens(data, pos, state)
        self.bytes += end

    def finish(self) -> None:
        """:raises JsonError: the bytes fed were not one whole JSON document."""
        if self._state == _IN_NUMBER and self._part in _NUMBER_ENDS:
            self._state = _AFTER
        if self._state != _AFTER or self._stack:
            raise JsonError(f"the document is incomplete after {self.bytes} bytes")
        # A whole document ends in ASCII, so no UTF-8 character can be left half read; checked all the same.
        self._utf8.decode(b"", final=True)

    # -- between tokens ----------------------------------------------------------------------------------------

    def _run(self, data: bytes, pos: int, state: int) -> int:
        """Skip a run of flat values in the open container, where it expects one; return where it ends."""
        top = self._stack[-1]
        if top == ord("["):
            if state not in (_VALUE, _VALUE_OR_END):
                return pos
            found = _ARRAY_RUN.match(data, pos)
        elif state in (_KEY, _KEY_OR_END):
            found = (self._top_run if len(self._stack) == 1 else _OBJECT_RUN).match(data, pos)
        else:
            return pos
        assert found is not None  # every part of the run is optional
        if found.end() > pos:
            if found.group("end") is not None:
                self._stack.pop()
                self._state = _AFTER
            else:
                self._state = _VALUE if top == ord("[") else _KEY
        return found.end()

    def _between_tokens(self, data: bytes, pos: int, state: int) -> int:
        byte = data[pos]
        stack = self._stack
        if state == _AFTER:
            if not stack:
                raise self._error("more data after the document", pos)
            if byte == ord(","):
                self._state = _VALUE if stack[-1] == ord("[") else _KEY
            elif byte == _CLOSING[stack[-1]]:
                stack.pop()
            else:
                raise self._error("expected ',' or the end of the container", pos)
        elif state == _COLON:
            if byte != ord(":"):
                raise self._error("expected ':'", pos)
            self._state = _VALUE
        elif state in (_KEY, _KEY_OR_END):
            if byte == ord('"'):
                self._state = _STRING_BODY
                self._in_key = True
                self._keep = bytearray() if len(stack) == 1 else None
            elif byte == ord("}") and state == _KEY_OR_END:
                stack.pop()
                self._state = _AFTER
            else:
                raise self._error("expected a key", pos)
        elif byte == ord("]") and state == _VALUE_OR_END:
            stack.pop()
            self._state = _AFTER
        else:
            self._value(byte, pos)
        return pos + 1

    def _value(self, byte: int, pos: int) -> None:
        """Start the value that ``byte`` begins."""
        picked = self._key_is_picked and len(self._stack) == 1
        self._key_is_picked = False
        self._keep = None
        if byte == ord('"'):
            self._state = _STRING_BODY
            self._in_key = False
            if picked:
                self._keep = bytearray()
            return
        if picked:
            self.picked = NotAString(_KINDS.get(byte, "a number"))
        if byte in _CLOSING:
            if len(self._stack) >= MAX_DEPTH:
                raise self._error(f"nested deeper than {MAX_DEPTH}", pos)
            self._stack.append(byte)
            self._state = _KEY_OR_END if byte == ord("{") else _VALUE_OR_END
        elif byte in _LITERALS:
            self._state, self._letters = _LITERAL, _LITERALS[byte]
        elif byte == ord("-") or ord("0") <= byte <= ord("9"):
            self._state = _IN_NUMBER
            self._part = _MINUS if byte == ord("-") else _ZERO if byte == ord("0") else _INT
        else:
            raise self._error("expected a value", pos)

    # -- inside a token ----------------------------------------------------------------------------------------

    def _string(self, data: bytes, pos: int, end: int) -> int:
        while pos < end:
            state = self._state
            if state == _STRING_BODY:
                stop = _SKIP_CHARS.match(data, pos).end()  # type: ignore[union-attr]
                self._kept(data, pos, stop)
                if stop == end:
                    return stop
                byte = data[stop]
                if byte == ord('"'):
                    self._string_ends()
                    return stop + 1
                if byte != ord("\\"):
                    raise self._error("a control character in a string", stop)
                self._state = _ESCAPED  # an escape the chunk cuts, or a bad one
                self._kept(data, stop, stop + 1)
                pos = stop + 1
                continue
            byte = data[pos]
            if state == _ESCAPED:
                if byte == ord("u"):
                    self._state, self._hex = _HEX, 4
                elif byte in _ESCAPES:
                    self._state = _STRING_BODY
                else:
                    raise self._error("an invalid escape in a string", pos)
            elif byte in _HEX_DIGITS:
                self._hex -= 1
                if not self._hex:
                    self._state = _STRING_BODY
            else:
                raise self._error("an invalid \\u escape in a string", pos)
            self._kept(data, pos, pos + 1)
            pos += 1
        return pos

    def _kept(self, data: bytes, start: int, stop: int) -> None:
        keep = self._keep
        if keep is not None and len(keep) <= MAX_PICKED_BYTES:
            keep += data[start : min(stop, start + MAX_PICKED_BYTES + 1 - len(keep))]

    def _string_ends(self) -> None:
        keep, self._keep = self._keep, None
        if self._in_key:
            self._key_is_picked = keep is not None and _decoded(keep) == self._pick
            self._state = _COLON
            return
        self._state = _AFTER
        if keep is not None:
            text = _decoded(keep)
            self.picked = text if text is not None else NotAString(f"a string of over {MAX_PICKED_BYTES} bytes")

    def _number(self, data: bytes, pos: int, end: int) -> int:
        part = self._part
        while pos < end:
            if part in _DIGIT_RUNS:
                pos = _SKIP_DIGITS.match(data, pos).end()  # type: ignore[union-attr]
                if pos == end:
                    break
            byte = data[pos]
            digit = ord("0") <= byte <= ord("9")
            if digit and part == _MINUS:
                part = _ZERO if byte == ord("0") else _INT
            elif digit and part == _POINT:
                part = _FRACTION
            elif digit and part in (_E, _SIGN):
                part = _EXPONENT
            elif byte == ord(".") and part in (_ZERO, _INT):
                part = _POINT
            elif byte in b"eE" and part in (_ZERO, _INT, _FRACTION):
                part = _E
            elif byte in b"+-" and part == _E:
                part = _SIGN
            elif part in _NUMBER_ENDS:
                self._state = _AFTER  # the byte after the number: read again, as what follows a value
                return pos
            else:
                raise self._error("a malformed number", pos)
            pos += 1
        self._part = part
        return pos

    def _literal(self, data: bytes, pos: int) -> int:
        letters = self._letters
        seen = data[pos : pos + len(letters)]
        if not letters.startswith(seen):
            raise self._error("a malformed literal (true, false or null)", pos)
        self._letters = letters[len(seen) :]
        if not self._letters:
            self._state = _AFTER
        return pos + len(seen)

    def _error(self, what: str, pos: int) -> JsonError:
        return JsonError(f"{what} at byte {self.bytes + pos}")


def _decoded(raw: bytearray) -> str | None:
    """A kept string's text, or None if it was longer than was kept."""
    if len(raw) > MAX_PICKED_BYTES:
        return None
    text: Any = json.loads(b'"' + raw + b'"')
    return str(text)
