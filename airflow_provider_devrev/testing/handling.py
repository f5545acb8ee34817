"""The HTTP half of :class:`~airflow_provider_devrev.testing.simulator.DevRevSimulator`: answering a request.

A request is logged with its token masked, then meets a scripted fault if one matches, then the token check
(401), then the rate limit (429), then the endpoint; what it saw is kept for the test to read. The simulator
itself (simulator.py) is what a test holds: starting and stopping, scripting tokens and faults, the log.
"""

from __future__ import annotations

import json
import secrets
import threading
import traceback
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from airflow_provider_devrev.testing.api import dispatch
from airflow_provider_devrev.testing.faults import FaultQueue, RateLimiter, fault_reply
from airflow_provider_devrev.testing.paging import ListingStyle
from airflow_provider_devrev.testing.protocol import Reply, json_reply
from airflow_provider_devrev.testing.state import SimulatorState

if TYPE_CHECKING:
    from collections.abc import Callable


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the simulator saw it, with the token masked.

    :param method: the HTTP method.
    :param path: the percent-decoded path, without query.
    :param query: decoded query parameters, first value of each.
    :param headers: request headers; ``Authorization`` reads ``Bearer ***`` when it carried the current
        token and ``<invalid>`` otherwise, and any token text elsewhere is replaced by ``***``.
    :param body: the parsed JSON body of a POST (its text when it was not JSON), else None.
    :param session_id: the ``session_id`` from the query or the JSON body.
    :param status: the status answered; None when no response was sent (dropped, or still in flight).
    :param time: the simulator clock when the request arrived.
    :param fault: the kind of the scripted fault that handled it, if any.
    :param token: which token it carried: 1 for the simulator's first token, 2 for the one it accepted
        next (:meth:`DevRevSimulator.rotate_token` or :meth:`~DevRevSimulator.set_token`), and so on; None
        for no token or one the simulator never accepted. Lets a test tell old-token from new-token
        requests without the log holding a token.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    session_id: str | None
    status: int | None
    time: float
    fault: str | None = None
    token: int | None = None


@dataclass
class _Incoming:
    method: str
    path: str
    query: dict[str, str]
    authorization: str | None
    body: Any
    body_error: str | None
    session_id: str | None


@dataclass
class _Record:
    request: RecordedRequest
    in_flight: bool = True


class _Exchange:
    """Binds one request to the simulator that answers it."""

    def __init__(self, simulator: RequestHandling, record: _Record, incoming: _Incoming) -> None:
        self.simulator, self.record, self.incoming = simulator, record, incoming

    def respond(self, stop: threading.Event) -> Reply:
        return self.simulator._respond(self.incoming, self.record, stop)

    def answering(self, status: int) -> None:
        self.simulator._answering(self.record, status)

    def finished(self) -> None:
        self.simulator._finished(self.record)


class TransportView:
    """The transport's view of a simulator; keeps these hooks off the simulator's public surface."""

    def __init__(self, simulator: RequestHandling) -> None:
        self.simulator = simulator

    def connection_opened(self) -> None:
        self.simulator._connection_opened()

    def begin(self, method: str, target: str, headers: dict[str, str], raw_body: bytes) -> _Exchange:
        return self.simulator._begin(method, target, headers, raw_body)


class RequestHandling(SimulatorState):
    """Tokens, faults, the rate limit and the request log of a simulator, and how each request is answered.

    :param token: the bearer token accepted at first.
    :param page_size: default list page size when a request gives no ``limit``.
    :param rate_limit: ``(requests, per_seconds)`` per fixed window of ``clock``, or None.
    """

    def __init__(
        self,
        *,
        token: str,
        seed: int,
        clock: Callable[[], float],
        seed_data: bool,
        page_size: int,
        rate_limit: tuple[int, float] | None,
        style: ListingStyle | None = None,
    ) -> None:
        super().__init__(seed=seed, clock=clock, seed_data=seed_data)
        self._page_size = page_size
        self._style = style or ListingStyle()
        # Called with the list page's number before each list request is answered (see on_page).
        self._page_callbacks: list[Callable[[int], Any]] = []
        self._list_requests = 0
        self._limiter = RateLimiter(*rate_limit, now=clock()) if rate_limit else None
        self._tokens_seen: list[str] = []
        self._token = ""
        self._revoked = False
        self._retired: set[str] = set()
        self._request_actions: list[tuple[int, Callable[[], Any]]] = []
        self._received = 0
        self._set_token(token)
        self._faults = FaultQueue()
        self._log: list[_Record] = []
        self._connections = 0
        self._in_flight = 0
        self._peak_in_flight = 0

    def _set_token(self, token: str) -> None:
        if not isinstance(token, str) or not token or any(c.isspace() or not c.isprintable() for c in token):
            raise ValueError("token must be a non-empty string without whitespace")
        self._token = token
        self._revoked = False
        if token not in self._tokens_seen:
            self._tokens_seen.append(token)

    # -- request handling (called from handler threads) ----------------------------------------------

    def _connection_opened(self) -> None:
        with self._lock:
            self._connections += 1

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for token in self._tokens_seen:
                value = value.replace(token, "***")
            return value
        if isinstance(value, list):
            return [self._scrub(item) for item in value]
        if isinstance(value, dict):
            return {self._scrub(key): self._scrub(item) for key, item in value.items()}
        return value

    def _token_matches(self, authorization: str | None, token: str | None = None) -> bool:
        scheme, _, value = (authorization or "").strip().partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(
            value.strip().encode("utf-8", "replace"), (token or self._token).encode("utf-8")
        )

    def _token_number(self, authorization: str | None) -> int | None:
        numbered = enumerate(self._tokens_seen, start=1)
        return next((number for number, token in numbered if self._token_matches(authorization, token)), None)

    def _begin(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> _Exchange:
        path_text, _, query_text = target.partition("?")
        if "://" in path_text:  # absolute-form request target, as sent through a proxy
            path_text = urlsplit(path_text).path or "/"
        query = {key: values[0] for key, values in parse_qs(query_text, keep_blank_values=True).items()}
        body: Any = None
        body_error = None
        logged_body: Any = None
        if method == "POST":
            try:
                body = logged_body = json.loads(raw.decode("utf-8"))
            except ValueError:  # includes UnicodeDecodeError
                body_error = "request body is not valid JSON"
                # Keep what was sent, so a test can see what a broken client produced.
                logged_body = raw.decode("utf-8", "replace") if raw else None
            else:
                if not isinstance(body, dict):
                    body_error = "request body must be a JSON object"
        session_id = query.get("session_id")
        if isinstance(body, dict) and isinstance(body.get("session_id"), str):
            session_id = body["session_id"]
        authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        incoming = _Incoming(method, unquote(path_text), query, authorization, body, body_error, session_id)
        with self._lock:
            masked = "Bearer ***" if self._token_matches(authorization) else "<invalid>"
            self._received += 1
            record = _Record(
                RecordedRequest(
                    method=method,
                    path=self._scrub(incoming.path),
                    query=self._scrub(query),
                    headers={k: masked if k.lower() == "authorization" else self._scrub(v) for k, v in headers.items()},
                    body=self._scrub(logged_body),
                    session_id=self._scrub(session_id),
                    status=None,
                    time=self._clock(),
                    token=self._token_number(authorization),
                )
            )
            self._log.append(record)
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
            due = [action for number, action in self._request_actions if number <= self._received]
            self._request_actions = [entry for entry in self._request_actions if entry[0] > self._received]
        # Outside the lock, before the request is answered: an action may use the simulator's own methods.
        for action in due:
            action()
        return _Exchange(self, record, incoming)

    def _finished(self, record: _Record) -> None:
        with self._lock:
            self._leave_flight(record)

    def _answering(self, record: _Record, status: int) -> None:
        with self._lock:
            record.request = replace(record.request, status=status)
            # No longer in flight once its reply is going out: a client that has read the reply must not
            # find it still counted (reset_peak_concurrency right after, or its next request, would).
            self._leave_flight(record)

    def _leave_flight(self, record: _Record) -> None:
        if record.in_flight:
            record.in_flight = False
            self._in_flight -= 1

    def _respond(self, incoming: _Incoming, record: _Record, stop: threading.Event) -> Reply:
        fault = self._faults.take(incoming.path, incoming.session_id)
        if fault is None:
            return self._normal(incoming)
        with self._lock:
            record.request = replace(record.request, fault=fault.kind)
        return fault_reply(fault, normal=lambda: self._normal(incoming), stop=stop)

    def _normal(self, incoming: _Incoming) -> Reply:
        try:
            if incoming.path == "/observability.sessions.list":
                with self._lock:
                    self._list_requests += 1
                    number, callbacks = self._list_requests, list(self._page_callbacks)
                # Outside the lock, as at_request's actions are: a callback may use the simulator's own methods.
                for callback in callbacks:
                    callback(number)
            with self._lock:
                if not self._token_matches(incoming.authorization):
                    if any(self._token_matches(incoming.authorization, old) for old in self._retired):
                        return _unauthorized("token_revoked", "the token has been revoked")
                    return _unauthorized("unauthenticated", "missing or invalid bearer token")
                if self._revoked:
                    return _unauthorized("token_revoked", "the token has been revoked")
                now = self._clock()
                limited: Reply | None = None
                headers: tuple[tuple[str, str], ...] = ()
                if self._limiter:
                    # One window per token (keyed by its number, the log's name for it), whatever it asks for.
                    limited, headers = self._limiter.check(now, self._tokens_seen.index(self._token) + 1)
                if limited is not None:
                    return limited
                reply = dispatch(
                    incoming.method,
                    incoming.path,
                    incoming.query,
                    incoming.body,
                    incoming.body_error,
                    self._store,
                    now=now,
                    page_size=self._page_size,
                    seed=self._seed,
                    inflated=self._inflated,
                    style=self._style,
                )
            return replace(reply, headers=reply.headers + headers)
        except Exception:
            traceback.print_exc()  # a simulator bug: make it loud, but still answer within the contract
            message = "simulator bug; see its stderr"
            return json_reply(500, {"type": "internal_error", "message": message, "reference_id": "simulator"})


def _unauthorized(type_: str, message: str) -> Reply:
    return json_reply(401, {"type": type_, "message": message}, (("WWW-Authenticate", "Bearer"),))
