"""
The secrets this process has read (tokens, proxy passwords), so that no text the provider builds can show one.

Airflow's secret masker guards logs, and only where it runs: an error's text also reaches a trigger event (stored
in the metadata DB unmasked), an exception's ``str``, a ``repr``. And the masker matches whole values, so a
secret cut short by an excerpt escapes it. Every text that quotes something from outside (an answer's body, a
bad value) is therefore passed through :func:`hide` *before* it is cut; the errors hide their fields too.

The forms are registered by whoever reads the secret (the hook reading its connection), at the same moment as
they go to Airflow's masker. Pure and in-process: no Airflow import, nothing sent anywhere, safe on an event
loop. Also here, since both are about where a secret hides in a text: the password of a proxy URL, found
however the URL is written (:func:`split_credentials`), and every form of it to register
(:func:`proxy_secret_forms`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, unquote

#: Airflow's masker ignores shorter secrets; so does this, or "ab" would be hidden inside every word.
MIN_SECRET_LENGTH = 5
#: The most forms kept; the oldest go first (a long-lived triggerer reads rotated tokens for months).
MAX_KNOWN = 1024
REPLACEMENT = "***"
#: Environment variables that may name a proxy, and so hold its password (each also in upper case).
PROXY_ENV = ("https_proxy", "http_proxy", "all_proxy")

# Longest first, so a form inside a longer one (the token inside its header value) never leaves a remnant.
# Replaced whole, never mutated: readers on other threads iterate the tuple they got without a lock.
_known: tuple[str, ...] = ()
# The same forms, oldest first (under the lock).
_order: dict[str, None] = {}
_lock = threading.Lock()


def secret_forms(secret: str) -> list[str]:
    """``secret`` and the escaped forms ``repr``, JSON and URL-encoding write it in, without duplicates."""
    forms = [
        secret,
        repr(secret)[1:-1],
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
    ]
    return [form for form in dict.fromkeys(forms) if len(form) >= MIN_SECRET_LENGTH]


def remember(forms: Iterable[str]) -> None:
    """
    Add ``forms`` (each as it is: see :func:`secret_forms` for the escaped ones) to the secrets to hide, and
    each with its whitespace runs made single spaces, as one-line messages write a text they quote.
    """
    global _known
    new = [form for form in forms if isinstance(form, str)]
    new += [" ".join(form.split()) for form in new]
    new = [form for form in dict.fromkeys(new) if len(form) >= MIN_SECRET_LENGTH]
    with _lock:
        added = False
        for form in new:
            # Read again: the newest once more, so a secret in use is never the one evicted.
            added |= _order.pop(form, False) is False
            _order[form] = None
        while len(_order) > MAX_KNOWN:
            del _order[next(iter(_order))]
        if added:  # the common case, a connection read again, changes only the order
            _known = tuple(sorted(_order, key=len, reverse=True))


def hide(text: str) -> str:
    """``text`` with every secret this process has read replaced by ``***``."""
    known = _known
    if not known or not text:
        return text
    # Nearly every text holds no secret: a substring test per form (a plain loop: a generator in any()
    # costs twice as much, on every error of every poll) before any replacement.
    for form in known:
        if form in text:
            break
    else:
        return text
    for form in known:
        if form in text:
            text = text.replace(form, REPLACEMENT)
    return text


def hide_optional(text: str | None) -> str | None:
    """:func:`hide` for an optional field."""
    return hide(text) if text else text


#: ``host[:port][/path...]`` with nothing that could be a password: no ``@``, and only digits after a colon.
_PLAIN_AUTHORITY = re.compile(r"(?:\[[^\]]*\]|[^:/?#@\[\]]*)(?::\d*)?(?:[/?#].*)?", re.S)
_HOST = re.compile(r"\[[^\]]*\]|[^:/?#]*")


def split_credentials(text: str) -> tuple[str, str | None, str | None]:
    """
    ``text`` (a proxy URL, parseable or not) with its password replaced by ``***``; its user; its password as
    written (``None``: it holds none).

    A person pastes a password as it is, and a URL parser would end the authority at its first ``/``, ``?`` or
    ``#``; so the userinfo runs to the *last* ``@``. Without an ``@``, whatever follows the host but is not a
    port (``http://user:pass``, the host forgotten) is taken for a password too.
    """
    scheme, sep, rest = text.partition("://") if "://" in text else ("", "", text)
    userinfo, at, hostpart = rest.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        if not colon:
            return text, user, None
        return f"{scheme}{sep}{user}:***@{hostpart}", user, password
    if _PLAIN_AUTHORITY.fullmatch(rest):
        return text, None, None
    host = _HOST.match(rest)
    head = host.group(0) if host else ""
    return f"{scheme}{sep}{head}:***", None, rest[len(head) :].removeprefix(":")


def proxy_secret_forms(extra: Mapping[str, Any], environ: Mapping[str, str]) -> list[str]:
    """
    Every form in which a proxy password could appear in a text, for the secret masker, from the ``proxy``
    extra and every proxy variable of the environment (:data:`PROXY_ENV`, either case), read or not: each
    value that holds a password, whole; the password as written, and percent-decoded in every escaped form
    (:func:`secret_forms`, percent-encoded among them); the base64 of the basic auth (UTF-8 as aiohttp sends
    it, Latin-1 as requests does), which ``Proxy-Authorization: Basic ...`` carries. Values that do not parse
    count too: the error about them must not show the password, and a log line may quote the variable.

    :param extra: The connection's extras (``proxy``, or ``extra__devrev__proxy`` from older forms).
    :param environ: The environment the network decision reads.
    """
    values = [extra.get("proxy"), extra.get("extra__devrev__proxy")]
    values += [environ.get(name) for base in PROXY_ENV for name in (base, base.upper())]
    forms: list[str] = []
    for value in values:
        if not isinstance(value, str):
            continue
        _, user, password = split_credentials(value.strip())
        if password is None:
            continue
        decoded = unquote(password)
        # The decoded password in every escaped form (its percent-encoded one among them); the rest as they
        # are: each form costs Airflow's masker a recompilation of all its patterns.
        forms += [value, repr(value)[1:-1], password, *secret_forms(decoded)]
        if user is not None:
            pair = f"{unquote(user)}:{decoded}"
            for encoding in ("utf-8", "latin-1"):
                with contextlib.suppress(UnicodeEncodeError):
                    forms.append(base64.b64encode(pair.encode(encoding)).decode("ascii"))
    return [form for form in dict.fromkeys(forms) if len(form) >= MIN_SECRET_LENGTH]
