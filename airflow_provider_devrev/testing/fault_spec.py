"""The ``--fault`` syntax of ``devrev-simulator``: every fault of :mod:`.faults`, written on one command line.

``KIND[:KEY=VALUE,...][@ENDPOINT][*TIMES]``, for example ``server_error:status=503@sessions.get*3``:

- ``KIND`` is one of :data:`~airflow_provider_devrev.testing.faults.FAULT_KINDS`, ``KEY`` one of its parameters
  (:data:`~airflow_provider_devrev.testing.faults.FAULT_PARAMS`);
- a ``VALUE`` is JSON where it parses as JSON (``2``, ``0.25``, ``null``, ``"text"``, ``{"type": "x"}``) and plain
  text otherwise (``header=http-date``). Commas, ``@`` and ``*`` inside quotes, braces or brackets belong to the
  value; quote a text value that holds one of them outside those;
- ``ENDPOINT`` is a path the simulator serves, with or without its leading ``/`` and ``observability.``
  (``sessions.get``, ``/observability.sessions.list``, ``dev-users.self``); without it, every endpoint;
- ``TIMES`` is how many matching requests meet the fault (default 1), or ``always`` for every one.

Each spec is checked by :func:`~airflow_provider_devrev.testing.faults.make_fault`, the same check as
``DevRevSimulator.add_fault``, when it is parsed: a bad one stops the simulator before it listens.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from airflow_provider_devrev.testing.api import ROUTES
from airflow_provider_devrev.testing.faults import FAULT_PARAMS, make_fault

#: The word ``TIMES`` takes for "every matching request, until the simulator stops".
ALWAYS = "always"
_PREFIX = "observability."
_CLOSERS = {"{": "}", "[": "]"}
_PLAIN = re.compile(r"[A-Za-z0-9_./+-]+")


class FaultSpecError(ValueError):
    """A ``--fault`` value that cannot be a fault; the message names the value and what is wrong with it."""


@dataclass(frozen=True)
class FaultSpec:
    """One parsed ``--fault``: what :meth:`DevRevSimulator.add_fault` is called with.

    :param kind: the fault kind.
    :param params: its parameters, as given (the simulator fills in the defaults).
    :param path: the endpoint's path; None for every endpoint.
    :param times: matching requests it affects; None for every one.
    """

    kind: str
    params: dict[str, Any]
    path: str | None = None
    times: int | None = 1

    def describe(self) -> str:
        """One line for the simulator's start-up output."""
        where = self.path or "every endpoint"
        count = "every request" if self.times is None else f"the next {self.times} request(s)"
        args = ", ".join(f"{key}={json.dumps(value)}" for key, value in self.params.items())
        return f"fault {self.kind}{f' ({args})' if args else ''} on {where}: {count}"


def endpoint_path(name: str) -> str:
    """The path ``name`` stands for: ``sessions.get`` → ``/observability.sessions.get``.

    :param name: an endpoint as ``--fault`` takes it.
    :raises FaultSpecError: for a path the simulator does not serve.
    """
    bare = name.removeprefix("/")
    for path in (f"/{bare}", f"/{_PREFIX}{bare}"):
        if path in ROUTES:
            return path
    short = sorted(path[1:].removeprefix(_PREFIX) for path in ROUTES)
    raise FaultSpecError(f"unknown endpoint {name!r}; expected one of {short}")


def parse_fault_spec(text: str) -> FaultSpec:
    """Parse and check one ``--fault`` value.

    :param text: ``KIND[:KEY=VALUE,...][@ENDPOINT][*TIMES]``.
    :raises FaultSpecError: naming ``text`` and the problem: an unknown kind, parameter or endpoint, a value
        the kind refuses, a malformed ``KEY=VALUE`` or ``TIMES``.
    """
    try:
        return _parse(text)
    except (ValueError, TypeError) as exc:
        raise FaultSpecError(f"bad --fault {text!r}: {exc}") from None


def _parse(text: str) -> FaultSpec:
    head, suffixes = _split_top(text, "@*")
    kind, _, args = head.partition(":")
    kind = kind.strip()
    if not kind:
        raise ValueError(f"no fault kind; expected one of {sorted(FAULT_PARAMS)}")
    if kind not in FAULT_PARAMS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_PARAMS)}")
    params = _params(args) if args.strip() else {}
    path: str | None = None
    times: int | None = 1
    seen = set()
    for mark, value in suffixes:
        if mark in seen:
            raise ValueError(f"{mark!r} appears twice")
        seen.add(mark)
        if mark == "@":
            path = endpoint_path(value.strip())
        else:
            times = _times(value.strip())
    # Checked as DevRevSimulator.add_fault checks it, on a copy: make_fault fills in defaults in place.
    make_fault(kind, times=times, path=path, session_id=None, params=dict(params))
    return FaultSpec(kind=kind, params=params, path=path, times=times)


def _times(value: str) -> int | None:
    if value == ALWAYS:
        return None
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
    if not re.fullmatch(r"[0-9]+", value) or int(value) < 1:
        raise ValueError(f"TIMES must be a whole number >= 1 or {ALWAYS!r}, not {value!r}")
    return int(value)


def _params(args: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    first, rest = _split_top(args, ",")
    for item in [first, *(value for _, value in rest)]:
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ValueError(f"expected KEY=VALUE, got {item.strip()!r}")
        if key in params:
            raise ValueError(f"parameter {key!r} given twice")
        params[key] = _value(raw.strip())
    return params


def _value(raw: str) -> Any:
    """JSON where the text is JSON, the text itself otherwise (so ``header=seconds`` needs no quotes)."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _split_top(text: str, marks: str) -> tuple[str, list[tuple[str, str]]]:
    """``text`` cut at each of ``marks`` that is outside quotes, braces and brackets: the head, then
    ``(mark, text after it)`` pairs."""
    pieces: list[tuple[str, str]] = []
    start, depth, quoted, escaped = 0, [], False, False
    head: str | None = None
    for index, char in enumerate(text):
        if quoted:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char in _CLOSERS:
            depth.append(_CLOSERS[char])
        elif depth and char == depth[-1]:
            depth.pop()
        elif not depth and char in marks:
            if head is None:
                head = text[start:index]
            else:
                pieces[-1] = (pieces[-1][0], text[start:index])
            pieces.append((char, ""))
            start = index + 1
    if quoted or depth:
        raise ValueError("unbalanced quotes, braces or brackets")
    if head is None:
        return text, pieces
    pieces[-1] = (pieces[-1][0], text[start:])
    return head, pieces


def format_fault_spec(kind: str, params: dict[str, Any], *, endpoint: str | None = None, times: int | None = 1) -> str:
    """The ``--fault`` text for a fault: the inverse of :func:`parse_fault_spec`, for scripts that start a simulator.

    :param kind: the fault kind.
    :param params: its parameters; each value is written as JSON, except text that reads the same unquoted.
    :param endpoint: an endpoint as ``--fault`` takes it; None for every endpoint.
    :param times: matching requests it affects; None for every one.
    """
    text = kind
    if params:
        text += ":" + ",".join(f"{key}={_written(value)}" for key, value in params.items())
    if endpoint is not None:
        text += f"@{endpoint}"
    if times != 1:
        text += f"*{ALWAYS if times is None else times}"
    return text


def _written(value: Any) -> str:
    if isinstance(value, str) and _PLAIN.fullmatch(value) and _value(value) == value:
        return value
    return json.dumps(value)


def help_text() -> str:
    """The syntax and every kind with its parameters, for ``--help``."""
    kinds = "\n".join(
        f"  {kind:<15} {', '.join(sorted(FAULT_PARAMS[kind])) or '(no parameters)'}" for kind in sorted(FAULT_PARAMS)
    )
    endpoints = ", ".join(sorted(path[1:].removeprefix(_PREFIX) for path in ROUTES))
    return (
        "--fault KIND[:KEY=VALUE,...][@ENDPOINT][*TIMES]  (repeatable; faults are met in the order given)\n"
        f"kinds and their parameters:\n{kinds}\n"
        f"ENDPOINT: {endpoints} (default: every endpoint)\n"
        f"TIMES: how many matching requests meet it (default 1), or {ALWAYS!r} for every one\n"
        'VALUE: JSON (2, 0.25, null, "text", {"type": "x"}) or plain text (header=http-date)\n'
        "examples:\n"
        "  --fault rate_limit:retry_after=30@sessions.get\n"
        "  --fault server_error:status=503*3 --fault slow:delay=5@sessions.list\n"
        '  --fault status:status=400,body={"type":"bad_request","message":"no"} --fault revoked*always'
    )
