"""
A DevRev connection, read once and validated: base URL, token, timeouts, retry policy, headers.

The sync hook and the async trigger both build their :class:`ConnectionSettings` here, from the same
Airflow connection, so they send the same headers with the same timeouts and retry the same way. Extras from
a URI connection arrive as strings; they are coerced here, and a bad one fails with its name and value.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from airflow_provider_devrev import __version__

# Coerced in _values, below network.py, which reads verify_tls the same way; still importable from here.
from airflow_provider_devrev._values import coerce_bool as coerce_bool
from airflow_provider_devrev._values import coerce_count as coerce_count
from airflow_provider_devrev._values import coerce_seconds as coerce_seconds
from airflow_provider_devrev._values import extra_label
from airflow_provider_devrev.contract import DEFAULT_BASE_URL
from airflow_provider_devrev.exceptions import DevRevError, DevRevInvalidInputError
from airflow_provider_devrev.network import NetworkSettings, network_settings
from airflow_provider_devrev.policy import DEFAULT_MAX_RETRIES, DEFAULT_MAX_RETRY_WAIT, RetryPolicy

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 30.0
#: A whole request, headers and body: what bounds a body that trickles in, each read well within the read
#: timeout, for ever.
DEFAULT_REQUEST_TIMEOUT = 300.0
DEFAULT_API_SCOPE = "beta"
#: Airflow's secret masker ignores shorter secrets, so such a token would show in clear in logs.
MIN_TOKEN_LENGTH = 5

#: One leading ``Bearer `` (any case) pasted with the token: the header is ``Bearer <token>`` already.
_BEARER_PREFIX = re.compile(r"bearer[ \t]+", re.IGNORECASE)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HookOptions:
    """
    Per-hook overrides of the connection's extras; ``None`` means "use the connection's value".

    Validated when the hook (or operator) is built, so a bad value fails at DAG-parse time. Plain numbers,
    so the trigger can store them in Airflow's database.
    """

    timeout: float | None = None
    max_retries: int | None = None
    max_retry_wait: float | None = None
    request_timeout: float | None = None

    def __post_init__(self) -> None:
        if self.timeout is not None:
            object.__setattr__(self, "timeout", coerce_seconds("timeout", self.timeout))
        if self.request_timeout is not None:
            object.__setattr__(self, "request_timeout", coerce_seconds("request_timeout", self.request_timeout))
        if self.max_retries is not None:
            object.__setattr__(self, "max_retries", coerce_count("max_retries", self.max_retries))
        if self.max_retry_wait is not None:
            object.__setattr__(self, "max_retry_wait", coerce_seconds("max_retry_wait", self.max_retry_wait))

    def as_kwargs(self) -> dict[str, Any]:
        """The options that were set, as keyword arguments of ``DevRevHook``."""
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass(frozen=True)
class ConnectionSettings:
    """
    Everything a transport needs to call DevRev. The token is excluded from ``repr``.

    :param base_url: ``scheme://host[:port]`` without a trailing slash.
    :param token: The API token (the connection's password).
    :param connect_timeout: Seconds to wait for a TCP (and TLS) connection.
    :param read_timeout: Seconds to wait for each read of the answer.
    :param request_timeout: Seconds a whole request may take, from connecting to the last byte of the body.
    :param retry: The retry policy from ``max_retries`` and ``max_retry_wait``.
    :param api_scope: Sent as ``X-Devrev-Scope``; ``None`` sends no such header.
    :param network: Proxy, CAs and TLS verification (:mod:`airflow_provider_devrev.network`).
    :param session_url_template: The extra ``session_url_template``, as given: the address of a session in
        DevRev's app for the tasks' "DevRev session" link, checked only when a link is built
        (:mod:`airflow_provider_devrev.links`), so a bad one costs the link, never a request.
    """

    base_url: str
    token: str = field(repr=False)
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    api_scope: str | None = DEFAULT_API_SCOPE
    network: NetworkSettings = field(default_factory=NetworkSettings)
    session_url_template: Any = None

    def headers(self) -> dict[str, str]:
        """The headers of every request: auth, JSON, scope, and who we are."""
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/json",
            "User-Agent": f"airflow-provider-devrev/{__version__}",
        }
        if self.api_scope:
            headers["X-Devrev-Scope"] = self.api_scope
        return headers


def settings_from_connection(
    conn_id: str,
    *,
    host: str | None,
    port: int | None,
    password: str | None,
    extra: Mapping[str, Any],
    options: HookOptions,
    environ: Mapping[str, str] | None = None,
) -> ConnectionSettings:
    """
    Validate an Airflow connection's fields and extras, with the hook's overrides on top.

    :param environ: The environment for the proxy and CA rules (``os.environ`` when left out).
    :raises DevRevInvalidInputError: an extra is not of its type, naming the extra and the connection.
    :raises DevRevError: no token, a token too short to be masked, or plain ``http://`` to a remote host.
    """
    extra = _unprefixed(extra)
    token = normalize_token(password, conn_id)
    allow_insecure = coerce_bool("allow_insecure_http", extra.get("allow_insecure_http", False), conn_id)
    base_url = base_url_from(host, port, allow_insecure_http=allow_insecure, conn_id=conn_id)

    timeout = options.timeout
    if timeout is None and extra.get("timeout") not in (None, ""):
        timeout = coerce_seconds("timeout", extra["timeout"], conn_id)
    request_timeout = options.request_timeout
    if request_timeout is None and extra.get("request_timeout") not in (None, ""):
        request_timeout = coerce_seconds("request_timeout", extra["request_timeout"], conn_id)
    max_retries = options.max_retries
    if max_retries is None and extra.get("max_retries") not in (None, ""):
        max_retries = coerce_count("max_retries", extra["max_retries"], conn_id)
    max_retry_wait = options.max_retry_wait
    if max_retry_wait is None and extra.get("max_retry_wait") not in (None, ""):
        max_retry_wait = coerce_seconds("max_retry_wait", extra["max_retry_wait"], conn_id)
    api_scope = extra.get("api_scope", DEFAULT_API_SCOPE)
    if api_scope is not None and not isinstance(api_scope, str):
        raise DevRevInvalidInputError(extra_label("api_scope", conn_id), api_scope, "must be a string")

    return ConnectionSettings(
        base_url=base_url,
        token=token,
        # One number bounds each read; connecting never needs longer than the default, and a shorter
        # ``timeout`` shortens it too, so a user asking for 5 s never waits 10 s on a dead host.
        connect_timeout=min(DEFAULT_CONNECT_TIMEOUT, timeout) if timeout else DEFAULT_CONNECT_TIMEOUT,
        read_timeout=timeout or DEFAULT_READ_TIMEOUT,
        request_timeout=request_timeout or DEFAULT_REQUEST_TIMEOUT,
        retry=RetryPolicy(
            max_retries=DEFAULT_MAX_RETRIES if max_retries is None else max_retries,
            max_retry_wait=DEFAULT_MAX_RETRY_WAIT if max_retry_wait is None else max_retry_wait,
        ),
        api_scope=api_scope or None,
        network=network_settings(conn_id, base_url, extra, environ),
        session_url_template=extra.get("session_url_template") or None,
    )


def normalize_token(stored: str | None, conn_id: str) -> str:
    """
    The API token as it must be sent, from the connection's password as a person or a secret store left it.

    Surrounding whitespace goes (``kubectl create secret --from-file``, a Vault file or ``echo $TOKEN > file``
    all end it with a newline), and so does one leading ``Bearer `` (any case): the header adds its own.
    What is left must be printable ASCII without spaces, as every DevRev token is; anything else would be
    refused by the HTTP library, or sent and refused by DevRev, so it is refused here, before any request.

    :param stored: The connection's password, exactly as stored.
    :param conn_id: The connection, named in the errors.
    :raises DevRevError: no token, a token too short to be masked, or one with whitespace or a control
        character inside; the message names the connection and the problem, never any part of the token.
    """
    if not stored or not stored.strip():
        raise DevRevError(f"connection {conn_id!r} has no API token: set it as the connection's password")
    token = stored.strip()
    bearer = _BEARER_PREFIX.match(token)
    if bearer:
        token = token[bearer.end() :].strip()
        log.debug("The password of connection %r starts with 'Bearer '; sending the token after it", conn_id)
    problem = token_problem(token)
    if problem:
        raise DevRevError(
            f"connection {conn_id!r} has an API token that {problem}; copy the token again, exactly as "
            "DevRev shows it, into the connection's password"
        )
    if len(token) < MIN_TOKEN_LENGTH:
        raise DevRevError(
            f"connection {conn_id!r} has an API token of {len(token)} characters; Airflow does not mask "
            f"secrets shorter than {MIN_TOKEN_LENGTH}, so it would appear in logs. Use a real DevRev token."
        )
    return token


def token_problem(token: str) -> str | None:
    """What makes a stripped token unusable in an ``Authorization`` header, in words with no part of it."""
    if not token:
        return "is empty once 'Bearer ' and surrounding whitespace are removed"
    if "\n" in token or "\r" in token:
        return "contains a newline inside"
    if any(c in " \t" for c in token):
        return "contains a space or a tab inside"
    if any(c.isspace() for c in token):
        return "contains whitespace inside"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in token):
        return "contains a control character"
    if not token.isascii() or not token.isprintable():
        return "contains a character that is not printable ASCII (an invisible or typographic character?)"
    return None


def token_forms(stored: str | None) -> list[str]:
    """
    Every form of a stored token that could appear in text: as stored, stripped, without ``Bearer ``, as
    the header value, and the escaped forms ``repr``, JSON and URL-encoding give them. For the secret
    masker, which matches text exactly: it would not recognise ``tok\\n`` as the token ``tok<newline>``.
    """
    if not stored:
        return []
    stripped = stored.strip()
    bearer = _BEARER_PREFIX.match(stripped)
    bare = stripped[bearer.end() :].strip() if bearer else stripped
    forms: list[str] = []
    for form in (stored, stripped, bare, f"Bearer {bare}"):
        forms += [form, repr(form)[1:-1], json.dumps(form)[1:-1], quote(form, safe="")]
    return [form for form in dict.fromkeys(forms) if len(form) >= MIN_TOKEN_LENGTH]


def base_url_from(host: str | None, port: int | None, *, allow_insecure_http: bool, conn_id: str) -> str:
    """
    The base URL from the connection's host (``https://`` assumed without a scheme) and port.

    Refuses plain ``http://`` to anything but loopback unless ``allow_insecure_http`` is set: the token would
    cross the network in clear text.
    """
    raw = (host or "").strip() or DEFAULT_BASE_URL
    if "://" not in raw:
        raw = "https://" + raw
    parts = urlsplit(raw)
    try:
        explicit_port = parts.port
    except ValueError:  # a port that is not a number, or out of range
        explicit_port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or explicit_port == -1:
        raise DevRevInvalidInputError(f"host of connection {conn_id!r}", host, "must be an http(s) URL or a host name")
    netloc = parts.netloc
    if port and explicit_port is None:
        netloc = f"{netloc}:{port}"
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback(parts.hostname):
        raise DevRevError(
            f"connection {conn_id!r} would send the DevRev token over plain http:// to {parts.hostname}; "
            "use https://, or set the extra allow_insecure_http=true if this network is trusted"
        )
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


def is_loopback(hostname: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ``::1``."""
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        return False


def _unprefixed(extra: Mapping[str, Any]) -> dict[str, Any]:
    # Forms of older Airflow versions store extras as ``extra__devrev__<name>``; a plain key wins.
    prefix = "extra__devrev__"
    merged = {key[len(prefix) :]: value for key, value in extra.items() if key.startswith(prefix)}
    merged.update({key: value for key, value in extra.items() if not key.startswith(prefix)})
    return merged
