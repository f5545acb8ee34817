"""A local DevRev observability API server for tests, demos and users' own DAG tests.

:class:`DevRevSimulator` serves the contract in ``testing/contract/openapi.yaml`` over real HTTP/1.1 on
a loopback port, from a seeded data set (see :mod:`airflow_provider_devrev.testing.data`), with scripted
faults (see :mod:`airflow_provider_devrev.testing.faults`) and a log of every request it received.
Standard library only, and no Airflow import, so it can run anywhere the provider is installed.

Endpoints: ``GET``/``POST /observability.sessions.get``, ``GET``/``POST /observability.sessions.list``,
``GET``/``POST /observability.sessions.data.get`` (generated recordings, see
:mod:`airflow_provider_devrev.testing.recordings`), ``POST /observability.sessions.developer-info.get`` and
``GET /dev-users.self``. Any other path answers 404 ``not_found``; a known path with another method
answers 405 with ``Allow`` (outside the contract).

Order of handling for each request: body framing (413 over 1 MiB), then a matching fault if any, then
the bearer token (401), then the optional rate limit (429), then routing and the endpoint.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import threading
import time
import traceback
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

# The module, not the package: the package's __init__ names this module's classes.
import airflow_provider_devrev.testing.transport as transport
from airflow_provider_devrev.testing.api import dispatch
from airflow_provider_devrev.testing.data import DEFAULT_TOKEN, SEED_VERSION_KEYS
from airflow_provider_devrev.testing.faults import FaultQueue, RateLimiter, fault_reply, make_fault
from airflow_provider_devrev.testing.protocol import Reply, json_reply
from airflow_provider_devrev.testing.state import SimulatorState

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from airflow_provider_devrev.testing.tls import ThrowawayTLS

__all__ = ["DEFAULT_TOKEN", "DevRevSimulator", "RecordedRequest", "is_loopback"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback IP literal; the simulator binds nothing else.

    :param host: a host name or IP literal.
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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

    def __init__(self, simulator: DevRevSimulator, record: _Record, incoming: _Incoming) -> None:
        self.simulator, self.record, self.incoming = simulator, record, incoming

    def respond(self, stop: threading.Event) -> Reply:
        return self.simulator._respond(self.incoming, self.record, stop)

    def answering(self, status: int) -> None:
        self.simulator._answering(self.record, status)

    def finished(self) -> None:
        self.simulator._finished(self.record)


class _App:
    """The transport's view of a simulator; keeps these hooks off the simulator's public surface."""

    def __init__(self, simulator: DevRevSimulator) -> None:
        self.simulator = simulator

    def connection_opened(self) -> None:
        self.simulator._connection_opened()

    def begin(self, method: str, target: str, headers: dict[str, str], raw_body: bytes) -> _Exchange:
        return self.simulator._begin(method, target, headers, raw_body)


class DevRevSimulator(SimulatorState):
    """A DevRev API simulator on a loopback port; a context manager that starts and stops it.

    :param token: the bearer token it accepts.
    :param host: where to listen; only loopback (``127.0.0.1``, ``::1``, ``localhost``) is allowed.
    :param port: the port; 0 picks a free one on the first :meth:`start` and keeps it for later starts.
    :param seed: makes the seeded data set and :meth:`make_session` output reproducible.
    :param clock: time source (seconds) for ``appear_after_seconds``, the rate limit and the request log;
        inject a fake clock to control time in tests.
    :param page_size: default list page size when a request gives no ``limit``.
    :param rate_limit: ``(requests, per_seconds)`` per fixed window of ``clock``; over it, 429 with
        ``Retry-After``. When set, responses carry ``X-Ratelimit-Limit/-Remaining/-Reset``.
    :param seed_data: False starts with no sessions at all.
    :param tls: serve HTTPS with a throw-away CA made for this simulator (needs ``trustme``, from the
        ``testing`` extra); :attr:`ca_file` is that CA's PEM file, and :meth:`connection_json` puts it in
        the connection's ``ca_bundle`` extra.
    :param tls_certificate: with ``tls``, the certificate presented: ``valid`` (for 127.0.0.1, ``::1`` and
        localhost), ``wrong_host`` (issued to another name) or ``expired``; both broken ones are signed by
        the same CA, so a client trusting :attr:`ca_file` fails on exactly that one problem.
    :raises ValueError: for a non-loopback host or an invalid option.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
        *,
        page_size: int = 50,
        rate_limit: tuple[int, float] | None = None,
        seed_data: bool = True,
        tls: bool = False,
        tls_certificate: str = "valid",
    ) -> None:
        if not is_loopback(host):
            raise ValueError(f"refusing to listen on {host!r}: the simulator binds loopback addresses only")
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError("port must be an int in 0..65535")
        if not isinstance(page_size, int) or page_size < 1:
            raise ValueError("page_size must be an int >= 1")
        super().__init__(seed=seed, clock=clock, seed_data=seed_data)
        self._host = host
        self._port = port
        self._page_size = page_size
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
        self._state_lock = threading.Lock()
        self._server: transport.HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._seeded_keys = list(SEED_VERSION_KEYS) if seed_data else []
        self._tls: ThrowawayTLS | None = None
        if tls:
            from airflow_provider_devrev.testing.tls import ThrowawayTLS

            self._tls = ThrowawayTLS(tls_certificate)

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> DevRevSimulator:
        """Start serving in a daemon thread (no-op when already running); returns ``self``.

        :raises OSError: when the port cannot be bound (for example taken while the simulator was stopped).
        """
        with self._state_lock:
            if self._server is not None:
                return self
            context = self._tls.server_context if self._tls else None
            server, thread = transport.serve((self._host, self._port), _App(self), context)
            self._port = server.server_port
            self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection; data, faults and the log are kept. Idempotent."""
        with self._state_lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None or thread is None:
            return
        transport.stop(server, thread)

    def __enter__(self) -> DevRevSimulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._port else f"{self._host} (not started)"
        return f"<DevRevSimulator {where} running={self.running}>"

    @property
    def running(self) -> bool:
        """Whether it is serving now."""
        return self._server is not None

    @property
    def host(self) -> str:
        """The loopback address it binds."""
        return self._host

    @property
    def port(self) -> int:
        """The port; 0 until the first :meth:`start` when constructed with ``port=0``."""
        return self._port

    @property
    def url(self) -> str:
        """Base URL such as ``http://127.0.0.1:8765`` (``https://`` with ``tls``), once the port is known."""
        if not self._port:
            raise RuntimeError("the simulator has no port yet; call start() first")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{self.scheme}://{host}:{self._port}"

    @property
    def scheme(self) -> str:
        """``https`` when serving TLS, else ``http``."""
        return "https" if self._tls else "http"

    @property
    def ca_file(self) -> str | None:
        """With ``tls``, the path of the throw-away CA's PEM file (trust it to reach the simulator); else None."""
        return self._tls.ca_file if self._tls else None

    @property
    def token(self) -> str:
        """The bearer token currently accepted (never logged, never sent back)."""
        return self._token

    @property
    def connections_opened(self) -> int:
        """TCP connections accepted so far (keep-alive reuse keeps this low)."""
        with self._lock:
            return self._connections

    @property
    def peak_concurrency(self) -> int:
        """The most requests this simulator has had in flight at once (received, reply not yet written)."""
        with self._lock:
            return self._peak_in_flight

    def reset_peak_concurrency(self) -> None:
        """Start counting :attr:`peak_concurrency` afresh from the requests in flight now."""
        with self._lock:
            self._peak_in_flight = self._in_flight

    @property
    def seed_version_keys(self) -> list[str]:
        """The app version keys of the seeded data set (empty with ``seed_data=False``)."""
        return list(self._seeded_keys)

    # -- connection strings --------------------------------------------------------------------------

    def connection_json(self, conn_type: str = "devrev", **extra: Any) -> str:
        """JSON for ``AIRFLOW_CONN_DEVREV_DEFAULT``: host is the full URL, password the token.

        With ``tls``, the extra ``ca_bundle`` is :attr:`ca_file` unless given (``ca_bundle=None`` leaves the
        CA out, to see a client refuse the simulator).

        :param conn_type: the Airflow connection type.
        :param extra: the connection's extra fields.
        """
        if self._tls:
            extra.setdefault("ca_bundle", self._tls.ca_file)
        return json.dumps({"conn_type": conn_type, "host": self.url, "password": self._token, "extra": extra})

    def connection_uri(self, **extra: Any) -> str:
        """URI form, ``devrev://:TOKEN@http%3A%2F%2F127.0.0.1%3APORT/?key=value``, everything percent-encoded.

        A URI keeps a scheme in its host only percent-encoded (Airflow's convention): Airflow then reads
        the host as ``http://127.0.0.1:PORT`` (``https://`` with ``tls``, and ``ca_bundle`` as for
        :meth:`connection_json`).

        :param extra: extra fields as query parameters (bools as ``true``/``false``, containers as JSON).
        """
        host = f"[{self._host}]" if ":" in self._host else self._host
        if not self._port:
            raise RuntimeError("the simulator has no port yet; call start() first")
        if self._tls:
            extra.setdefault("ca_bundle", self._tls.ca_file)
        query = urlencode({key: _uri_value(value) for key, value in extra.items()}, quote_via=quote)
        base = quote(f"{self.scheme}://{host}:{self._port}", safe="")
        return f"devrev://:{quote(self._token, safe='')}@{base}/" + (f"?{query}" if query else "")

    # -- token, faults, request log ------------------------------------------------------------------

    def _set_token(self, token: str) -> None:
        if not isinstance(token, str) or not token or any(c.isspace() or not c.isprintable() for c in token):
            raise ValueError("token must be a non-empty string without whitespace")
        self._token = token
        self._revoked = False
        if token not in self._tokens_seen:
            self._tokens_seen.append(token)

    def set_token(self, new_token: str) -> None:
        """Accept ``new_token`` from now on; the previous token gets 401 ``unauthenticated``.

        :param new_token: the new bearer token.
        """
        with self._lock:
            self._set_token(new_token)

    def rotate_token(self, new_token: str) -> None:
        """Accept ``new_token`` from now on; every earlier token gets 401 ``token_revoked``, as DevRev answers
        a token revoked by a rotation (:meth:`set_token` answers ``unauthenticated`` instead).

        :param new_token: the new bearer token.
        """
        with self._lock:
            self._retired.update(self._tokens_seen)
            self._set_token(new_token)
            self._retired.discard(new_token)

    def at_request(self, number: int, action: Callable[[], Any]) -> None:
        """Run ``action()`` when request ``number`` (1-based, counted from the start) arrives, before it is
        answered: a way to change the world at an exact point of a client's run, say rotate the token
        and update the Airflow connection at the third poll. It runs in the request's handler thread.

        :param number: the request number; one already received never comes again.
        :param action: what to run, with no arguments.
        """
        if not isinstance(number, int) or number < 1:
            raise ValueError("number must be an int >= 1")
        with self._lock:
            self._request_actions.append((number, action))

    def revoke_token(self) -> None:
        """The current token gets 401 ``token_revoked`` until :meth:`set_token`."""
        with self._lock:
            self._revoked = True

    def add_fault(
        self,
        kind: str,
        *,
        times: int | None = 1,
        path: str | None = None,
        session_id: str | None = None,
        **params: Any,
    ) -> None:
        """Script a fault for the next ``times`` matching requests; see :mod:`.faults` for kinds and params.

        :param kind: ``rate_limit``, ``server_error``, ``status``, ``slow``, ``drop``, ``non_json``,
            ``truncated_json`` or ``revoked``.
        :param times: matching requests affected; None for all of them until :meth:`clear_faults`.
        :param path: only requests to this path, such as ``/observability.sessions.get``; None for any.
        :param session_id: only requests naming this session id; None for any.
        :param params: the kind's parameters.
        """
        self._faults.add(make_fault(kind, times=times, path=path, session_id=session_id, params=params))

    def clear_faults(self) -> None:
        """Forget every pending fault."""
        self._faults.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Snapshot of the request log, in arrival order."""
        with self._lock:
            return [record.request for record in self._log]

    def requests_for(self, path: str | None = None, session_id: str | None = None) -> list[RecordedRequest]:
        """Logged requests to ``path`` (leading ``/`` optional) and/or naming ``session_id``.

        :param path: filter on the path; None for any.
        :param session_id: filter on the session id; None for any.
        """
        if path is not None and not path.startswith("/"):
            path = "/" + path
        return [
            request
            for request in self.requests
            if path in (None, request.path) and session_id in (None, request.session_id)
        ]

    def clear_requests(self) -> None:
        """Empty the request log."""
        with self._lock:
            self._log.clear()

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
            with self._lock:
                if not self._token_matches(incoming.authorization):
                    if any(self._token_matches(incoming.authorization, old) for old in self._retired):
                        return _unauthorized("token_revoked", "the token has been revoked")
                    return _unauthorized("unauthenticated", "missing or invalid bearer token")
                if self._revoked:
                    return _unauthorized("token_revoked", "the token has been revoked")
                now = self._clock()
                limited, headers = self._limiter.check(now) if self._limiter else (None, ())
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
                )
            return replace(reply, headers=reply.headers + headers)
        except Exception:
            traceback.print_exc()  # a simulator bug: make it loud, but still answer within the contract
            message = "simulator bug; see its stderr"
            return json_reply(500, {"type": "internal_error", "message": message, "reference_id": "simulator"})


def _unauthorized(type_: str, message: str) -> Reply:
    return json_reply(401, {"type": type_, "message": message}, (("WWW-Authenticate", "Bearer"),))


def _uri_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return "" if value is None else str(value)
