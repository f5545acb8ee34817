"""
JSON text of anything ``json.loads`` can give, writable as UTF-8.

A JSON string may hold a lone surrogate, sent as the escape ``\\ud83d`` (a title cut in the middle of an
emoji): ``json.loads`` accepts it and gives a ``str`` holding U+D83D, which no UTF-8 stream can encode. Such a
code point is written back as the escape it arrived as. So are the three characters ``json.dumps`` leaves raw
that some readers take for the end of a line (U+0085, U+2028 and U+2029: Python's ``str.splitlines`` splits on
them, and would cut a JSON Lines record in two). Every other character is written as itself, so files stay
readable, and reading a line back with ``json.loads`` gives what ``json.loads`` gave from DevRev's body.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Outside string literals json.dumps writes ASCII only, so any of these in its output is inside a string,
# where the escape means the same code point.
_ESCAPED = re.compile("[\x85\u2028\u2029\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_text(value: Any) -> str:
    """
    ``value`` as compact JSON whose text encodes as UTF-8 whatever strings it holds.

    A lone surrogate is escaped (``\\ud83d``), and so are U+0085, U+2028 and U+2029; other characters,
    non-BMP ones included, are written as they are. A Python string holding a high surrogate followed by a
    low one (which ``json.loads`` never gives: it joins such a pair of escapes into one character) is read
    back as that one character, as it would be from any JSON.

    :param value: What ``json.dumps`` accepts.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    # Most sessions are ASCII: that check costs about 20 ns for 600 characters, the search 30 times that.
    return text if text.isascii() else _ESCAPED.sub(_escape, text)
