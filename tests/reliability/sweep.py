"""
What the secret sweep (``test_secret_sweep.py``) searches, and how: the texts one example produced, every
escaped form of every 6-character piece of its secret, and a control run to tell a leak from a coincidence.

A leak of any piece of 6 characters or more contains a piece of exactly 6, so those are the needles: each
raw and as JSON (ASCII or not), ``repr`` (once and twice: an exception's ``repr`` quotes its ``repr``-ed
value), and URL-encoding (``quote`` with and without ``/`` safe, ``quote_plus``) write it; and the aligned
8-character windows of the base64 of ``user:password`` (UTF-8 and Latin-1), which is what a basic-auth header
carries. A needle that is also in the control run's texts (the same scenario with a different secret of
the same shape: :func:`twin`) is common text that happens to match, not a leak.
"""

from __future__ import annotations

import base64
import importlib
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, quote_plus

from airflow_provider_devrev import _secrets

PIECE = 6
#: Characters that decide how a URL or a token parses: a control secret keeps them where they are.
STRUCTURAL = frozenset("/@:%#?&=+ \t")
_OTHER_PUNCTUATION = "!$'()*,-.;<>[]^_`{|}~\"\\"
_LATIN1_LETTERS = "ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞßàáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿ"
_WIDE_LETTERS = "αβγδεζηθικλμνξοπρστυφχψωдежзийклмн"
#: ISO timestamps of log lines: a piece of a secret that matches one ("000000") is the clock, not a leak.
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?Z?")

ESCAPES: dict[str, Callable[[str], str]] = {
    "raw": lambda s: s,
    "JSON": lambda s: json.dumps(s)[1:-1],
    "JSON, not ASCII": lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
    "repr": lambda s: repr(s)[1:-1],
    "repr of repr": lambda s: repr(repr(s)[1:-1])[1:-1],
    "URL-encoded": lambda s: quote(s, safe=""),
    "URL-encoded, / kept": lambda s: quote(s),
    "URL-encoded, + for space": lambda s: quote_plus(s, safe=""),
}


def needles(secret: str, user: str | None = None) -> dict[str, str]:
    """Every text that would show a piece of ``secret``, each with what it is (for the failure message)."""
    found: dict[str, str] = {}
    for start in range(len(secret) - PIECE + 1):
        piece = secret[start : start + PIECE]
        for name, escape in ESCAPES.items():
            found.setdefault(escape(piece), f"{name} of {piece!r}")
    if user is not None:
        for encoding in ("utf-8", "latin-1"):
            try:
                pair = f"{user}:{secret}".encode(encoding)
            except UnicodeEncodeError:
                continue
            encoded = base64.b64encode(pair).decode("ascii")
            # Windows of whole 3-byte groups that hold a byte of the password (the user is no secret).
            first = (len(user) + 1) // 3 * 4
            for start in range(first, len(encoded) - 7, 4):
                found.setdefault(encoded[start : start + 8], f"base64 ({encoding}) of {user}:<secret>")
    return found


def hits(needles_: dict[str, str], texts: dict[str, str]) -> dict[str, list[str]]:
    """For each needle found: where (``channel: context``)."""
    found: dict[str, list[str]] = {}
    for channel, text in texts.items():
        text = _TIMESTAMP.sub("<time>", text)
        for needle in needles_:
            at = text.find(needle)
            if at >= 0:
                found.setdefault(needle, []).append(f"{channel}: ...{text[max(0, at - 60) : at + 60]!r}...")
    return found


def twin(secret: str) -> str:
    """
    A different secret of the same shape: letters, digits and other characters replaced by others of their
    kind (ASCII, Latin-1, wider), the characters that steer parsing (:data:`STRUCTURAL`) kept in place. So
    the control run takes the same path (refused or sent, parsed or not) and shows the same common text.
    """
    out = []
    for char in secret:
        if char in STRUCTURAL:
            out.append(char)
        elif "a" <= char <= "z":
            out.append(chr((ord(char) - 97 + 13) % 26 + 97))
        elif "A" <= char <= "Z":
            out.append(chr((ord(char) - 65 + 13) % 26 + 65))
        elif "0" <= char <= "9":
            out.append(str((int(char) + 5) % 10))
        elif char.isascii():
            out.append(_shift(_OTHER_PUNCTUATION, char))
        elif ord(char) < 256:
            out.append(_shift(_LATIN1_LETTERS, char))
        else:
            out.append(_shift(_WIDE_LETTERS, char))
    return "".join(out)


def _shift(alphabet: str, char: str) -> str:
    index = alphabet.find(char)
    return alphabet[(index + 1) % len(alphabet)] if index >= 0 else alphabet[ord(char) % len(alphabet)]


def exception_texts(error: BaseException | None) -> str:
    """``str`` and ``repr`` of an exception and of everything it holds: causes, contexts, arguments (deep)."""
    texts: list[str] = []
    seen: set[int] = set()
    pending: list[Any] = [error]
    while pending:
        item = pending.pop()
        if id(item) in seen or item is None:
            continue
        seen.add(id(item))
        if isinstance(item, BaseException):
            texts += [str(item), repr(item), repr(item.args)]
            pending += [item.__cause__, item.__context__, *item.args]
        elif isinstance(item, (tuple, list)):
            pending += list(item)
        elif isinstance(item, dict):
            pending += list(item.values())
    return "\n".join(texts)


#: Where Airflow keeps its secret masker, newest first: the Task SDK's and core's (3.3 has one of each), each
#: under the name of the versions before (3.0, 2.11), which 3.3 still answers to with a deprecation warning.
_MASKER_MODULES = (
    ("airflow.sdk._shared.secrets_masker", "airflow.sdk.execution_time.secrets_masker"),
    ("airflow._shared.secrets_masker", "airflow.utils.log.secrets_masker"),
)


def _maskers() -> list[Any]:
    """Airflow's secret maskers in this process."""
    found: list[Any] = []
    for names in _MASKER_MODULES:
        for name in names:
            try:
                masker = importlib.import_module(name)._secrets_masker()
            except Exception:  # not in this version, or not configured
                continue
            if hasattr(masker, "patterns") and not any(masker is other for other in found):
                found.append(masker)
            break
    return found


@contextmanager
def secrets_forgotten_afterwards() -> Iterator[None]:
    """
    Run an example with Airflow's maskers holding its secrets alone, and forget them, there and in the
    provider's registry, once it ends.

    Both are process-wide: hundreds of generated secrets ("00000000" among them) would otherwise hide text
    that later tests in the same worker assert on. And each pattern Airflow adds recompiles one regular
    expression of all its patterns: started from those the session registered before (long tokens of other
    tests), 3.0.6 took 100 s instead of 6 for one driver's examples. Private state of both, restored as it was.
    """
    maskers = [(masker, masker.patterns, masker.replacer) for masker in _maskers()]
    order, known = dict(_secrets._order), _secrets._known
    for masker, _, _ in maskers:
        masker.patterns, masker.replacer = set(), None
    try:
        yield
    finally:
        for masker, patterns, replacer in maskers:
            masker.patterns, masker.replacer = patterns, replacer
        with _secrets._lock:
            _secrets._order.clear()
            _secrets._order.update(order)
            _secrets._known = known
