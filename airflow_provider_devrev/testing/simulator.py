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
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

# The module, not the package: the package's __init__ names this module's classes.
import airflow_provider_devrev.testing.transport as transport
from airflow_provider_devrev.testing.data import DEFAULT_TOKEN, SEED_VERSION_KEYS
from airflow_provider_devrev.testing.faults import make_fault
from airflow_provider_devrev.testing.handling import RecordedRequest, RequestHandling, TransportView
from airflow_provider_devrev.testing.paging import ListingStyle

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


class DevRevSimulator(RequestHandling):
    """A DevRev API simulator on a loopback port; a context manager that starts and stops it.

    :param token: the bearer token it accepts.
    :param host: where to listen; only loopback (``127.0.0.1``, ``::1``, ``localhost``) is allowed.
    :param port: the port; 0 picks a free one on the first :meth:`start` and keeps it for later starts.
    :param seed: makes the seeded data set and :meth:`make_session` output reproducible.
    :param clock: time source (seconds) for ``appear_after_seconds``, the rate limit and the request log;
        inject a fake clock to control time in tests.
    :param page_size: default list page size when a request gives no ``limit``.
    :param rate_limit: ``(requests, per_seconds)`` per fixed window of ``clock``, one series of windows per
        token (every request made with it counts, whatever session or connection it is for); over it, 429
        with ``Retry-After``. When set, responses carry ``X-Ratelimit-Limit/-Remaining/-Reset``.
    :param seed_data: False starts with no sessions at all.
    :param cursor_mode: how a list cursor remembers where its page ended: ``keyset`` (the sort key with the
        ``session_id`` as tie-break: a total order, stable when sessions come and go), ``keyset_no_tiebreak``
        (the sort key alone: sessions sharing a page's last ``created_at`` past the page are skipped) or
        ``offset`` (a position: a session added or removed before it repeats or hides another). DevRev's own
        cursor is not documented; the unkind modes are there so a client can be tested against each.
    :param order: ``asc`` or ``desc``: the ``created_at`` order of a list that sends no ``sort_by``.
    :param ignore_sort_by: disregard the ``sort_by`` of list requests (not even checked), as a server may.
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
        cursor_mode: str = "keyset",
        order: str = "asc",
        ignore_sort_by: bool = False,
    ) -> None:
        if not is_loopback(host):
            raise ValueError(f"refusing to listen on {host!r}: the simulator binds loopback addresses only")
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError("port must be an int in 0..65535")
        if not isinstance(page_size, int) or page_size < 1:
            raise ValueError("page_size must be an int >= 1")
        super().__init__(
            token=token,
            seed=seed,
            clock=clock,
            seed_data=seed_data,
            page_size=page_size,
            rate_limit=rate_limit,
            style=ListingStyle(cursor_mode, order, ignore_sort_by),
        )
        self._host = host
        self._port = port
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
            server, thread = transport.serve((self._host, self._port), TransportView(self), context)
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

    def on_page(self, callback: Callable[[int], Any]) -> None:
        """Call ``callback(number)`` before each list request is answered, ``number`` counting list requests
        from 1: the way to add or remove sessions between the pages of a client's listing. It runs in the
        request's handler thread, and may use the simulator's own methods (``add_session``, ``remove_session``).

        :param callback: what to run, with the list request's number.
        """
        with self._lock:
            self._page_callbacks.append(callback)

    @property
    def cursor_mode(self) -> str:
        """``keyset``, ``keyset_no_tiebreak`` or ``offset`` (see the class docstring)."""
        return self._style.cursor_mode

    @property
    def order(self) -> str:
        """``asc`` or ``desc``: the order of a list without ``sort_by``."""
        return self._style.order

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


def _uri_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return "" if value is None else str(value)
