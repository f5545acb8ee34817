"""
How to reach DevRev through a corporate network: which proxy, which CAs, whether to verify TLS.

One pure decision, made once when a connection's settings are built, from the connection's extras
(``proxy``, ``ca_bundle``, ``verify_tls``) and a snapshot of the environment (``HTTPS_PROXY``,
``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY`` and their lower-case forms; ``REQUESTS_CA_BUNDLE``,
``SSL_CERT_FILE``, ``SSL_CERT_DIR``). Both transports obey the resulting :class:`NetworkSettings`; neither reads
the environment itself (``requests`` runs with ``trust_env=False``, aiohttp gets its proxy and TLS context per
request), so poke mode and deferrable mode cannot take different routes.

Rules:

- The ``proxy`` extra wins; ``NO_PROXY`` does not apply to it (it names the proxy for this connection).
- Without it, the environment's proxy for the base URL's scheme (``https_proxy`` before ``HTTPS_PROXY``,
  as curl and urllib read them), else ``all_proxy``/``ALL_PROXY`` (as curl and requests fall back to it),
  unless ``NO_PROXY`` covers the host.
- The ``ca_bundle`` extra (a PEM file or a hashed directory) replaces the default CAs; without it,
  ``REQUESTS_CA_BUNDLE`` (the same); without it, ``SSL_CERT_FILE`` and/or ``SSL_CERT_DIR`` (both trusted when
  both are set, as OpenSSL does); without those, each library's default (see :mod:`._trust`).
- ``verify_tls=false`` turns verification off (and the hook logs a warning).
- A plain ``http://`` base URL (allowed to loopback only) has no TLS: no CA is read for it.

Also here: the errors for a failed TLS verification and for a proxy that refused the tunnel, so that the
two transports word them the same way. A proxy's password never appears in them, nor in the error for a proxy
URL that does not parse, whatever the password holds (``/``, ``#``, ``?``, ``@``): see
:mod:`airflow_provider_devrev._secrets`, which also lists what the hook registers with the secret masker.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from airflow_provider_devrev._secrets import split_credentials
from airflow_provider_devrev._trust import decide_trust
from airflow_provider_devrev._values import coerce_bool
from airflow_provider_devrev.exceptions import (
    DevRevError,
    DevRevInvalidInputError,
    DevRevProxyError,
    DevRevServerError,
    DevRevTLSError,
)


@dataclass(frozen=True)
class Proxy:
    """
    A forward proxy (``http://`` only; HTTPS to DevRev goes through it in a ``CONNECT`` tunnel).

    :param url: ``http://host:port``, without credentials.
    :param username: The user for basic auth, if any (percent-decoded).
    :param password: The password for basic auth (percent-decoded); a secret, never in ``repr``.
    :param source: Where it came from (``extra proxy``, ``HTTPS_PROXY``, ...), for messages.
    """

    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    source: str = "extra proxy"

    @property
    def display(self) -> str:
        """The proxy as messages name it: ``http://user:***@host:port``, never the password."""
        if self.username is None:
            return self.url
        scheme, _, rest = self.url.partition("://")
        secret = ":***" if self.password else ""
        return f"{scheme}://{quote(self.username, safe='')}{secret}@{rest}"

    def authorization(self) -> str | None:
        """The ``Proxy-Authorization`` header value (basic auth) for the credentials, if any."""
        if self.username is None:
            return None
        pair = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def url_with_credentials(self) -> str:
        """The URL ``requests`` needs (it sends the credentials as ``Proxy-Authorization``)."""
        if self.username is None:
            return self.url
        scheme, _, rest = self.url.partition("://")
        secret = f":{quote(self.password, safe='')}" if self.password else ""
        return f"{scheme}://{quote(self.username, safe='')}{secret}@{rest}"


@dataclass(frozen=True)
class NetworkSettings:
    """
    The route and the trust for one connection; hashable, so a transport can cache what it builds from it.

    :param proxy: The proxy to use, or ``None`` to connect directly.
    :param ca_file: A PEM file of CAs to trust instead of the default ones.
    :param ca_dir: A directory of CAs named by their hashes (``openssl rehash``) to trust instead of the
        default ones; from ``SSL_CERT_DIR``, possibly several, separated by ``os.pathsep``. With ``ca_file``
        (``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` both set) both are trusted. Neither: the libraries' defaults.
    :param ca_source: Where they came from (``extra ca_bundle``, ``REQUESTS_CA_BUNDLE``, ``SSL_CERT_FILE``,
        ``SSL_CERT_DIR``, ``SSL_CERT_FILE and SSL_CERT_DIR``).
    :param verify: Whether to verify DevRev's certificate (and host name) at all.
    """

    proxy: Proxy | None = None
    ca_file: str | None = None
    ca_dir: str | None = None
    ca_source: str | None = None
    verify: bool = True

    @property
    def is_default(self) -> bool:
        """No proxy, the default CAs, verification on: the transports' fast path."""
        return self.proxy is None and self.ca_file is None and self.ca_dir is None and self.verify

    @property
    def combined_trust(self) -> bool:
        """Whether the CAs are more than the one path requests' ``verify`` takes (a file and a directory, or
        several directories): the sync transport then sets them on its connections itself."""
        if not self.verify or self.ca_dir is None:
            return False
        return self.ca_file is not None or os.pathsep in self.ca_dir

    def requests_proxies(self) -> dict[str, str]:
        """``requests.Session.proxies``: the proxy for both schemes, or none."""
        if self.proxy is None:
            return {}
        url = self.proxy.url_with_credentials()
        return {"http": url, "https": url}

    def requests_verify(self) -> bool | str:
        """``requests.Session.verify``: ``False``; the CA file or directory (requests takes either); or
        ``True``: requests' own bundle (certifi's) or, with :attr:`combined_trust`, the CAs the sync
        transport sets itself."""
        if not self.verify:
            return False
        if self.combined_trust:
            return True
        return self.ca_file or self.ca_dir or True

    def trust_description(self) -> str:
        """Which CAs were trusted and where that came from, for an error message."""
        if self.ca_file is None and self.ca_dir is None:
            return (
                "the default CAs (certifi's bundle with requests, the system store with aiohttp; no ca_bundle, "
                "REQUESTS_CA_BUNDLE, SSL_CERT_FILE or SSL_CERT_DIR set)"
            )
        where = [
            f"the file {self.ca_file}" if self.ca_file else "",
            f"the directory {self.ca_dir}" if self.ca_dir else "",
        ]
        return f"the CAs in {' and '.join(w for w in where if w)} ({self.ca_source})"


def network_settings(
    conn_id: str,
    base_url: str,
    extra: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> NetworkSettings:
    """
    Decide the route and trust for ``base_url`` from a connection's extras and the environment.

    :param conn_id: The connection, named in errors.
    :param base_url: ``scheme://host[:port]``, already validated.
    :param extra: The connection's extras (``proxy``, ``ca_bundle``, ``verify_tls``); URI strings accepted.
    :param environ: The environment to read; ``os.environ`` when left out (read once, here).
    :raises DevRevInvalidInputError: a bad extra or environment value, naming it (never a password).
    """
    env = os.environ if environ is None else environ
    verify = coerce_bool("verify_tls", _blank_to_none(extra.get("verify_tls"), True), conn_id)

    parts = urlsplit(base_url)
    proxy_text = _blank_to_none(extra.get("proxy"), None)
    proxy: Proxy | None
    if proxy_text is not None:
        proxy = parse_proxy(proxy_text, f"extra proxy of connection {conn_id!r}", source="extra proxy")
    else:
        proxy = environment_proxy(parts.scheme, parts.hostname or "", parts.port, env)

    ca_file = ca_dir = ca_source = None
    if parts.scheme == "https":  # else no TLS to DevRev (a loopback simulator): no CA to choose
        ca_file, ca_dir, ca_source = decide_trust(_blank_to_none(extra.get("ca_bundle"), None), conn_id, env)
    return NetworkSettings(proxy=proxy, ca_file=ca_file, ca_dir=ca_dir, ca_source=ca_source, verify=verify)


def environment_proxy(scheme: str, host: str, port: int | None, env: Mapping[str, str]) -> Proxy | None:
    """
    The proxy the environment names for ``scheme://host:port``, or ``None`` (none set, or ``NO_PROXY``): the
    scheme's own variable, else ``ALL_PROXY``; lower case before upper case in each.
    """
    name = f"{scheme}_proxy"
    for variable in (name, name.upper(), "all_proxy", "ALL_PROXY"):
        value = env.get(variable, "").strip()
        if value:
            break
    else:
        return None
    no_proxy = env.get("no_proxy", "").strip() or env.get("NO_PROXY", "").strip()
    if bypasses_proxy(host, port or (443 if scheme == "https" else 80), no_proxy):
        return None
    return parse_proxy(value, f"environment variable {variable}", source=variable)


def bypasses_proxy(host: str, port: int, no_proxy: str) -> bool:
    """
    Whether ``NO_PROXY`` covers ``host``: ``*``; the host itself or a domain it is in (``example.com`` and
    ``.example.com`` both cover ``api.example.com``), optionally with ``:port``; an IP address or a CIDR
    range containing it.
    """
    host = host.lower().strip("[]")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in (item.strip().lower() for item in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        name, entry_port = entry, None
        if entry.count(":") == 1 or entry.startswith("["):  # host:port or [v6]:port, not a bare IPv6 address
            head, _, tail = entry.rpartition(":")
            if tail.isdigit():
                name, entry_port = head, int(tail)
        if entry_port is not None and entry_port != port:
            continue
        name = name.strip("[]").lstrip(".")
        if address is not None and "/" in name:
            try:
                if address in ipaddress.ip_network(name, strict=False):
                    return True
            except ValueError:
                pass
            continue
        if host == name or host.endswith("." + name):
            return True
    return False


def parse_proxy(text: Any, label: str, *, source: str) -> Proxy:
    """
    A :class:`Proxy` from ``http://[user[:password]@]host[:port]`` (``http://`` assumed without a scheme).

    :raises DevRevInvalidInputError: not a string, not ``http://``, no host, or an ``@`` after the host (a
        password with ``/``, ``?`` or ``#`` not percent-encoded); the value shown has its password replaced
        by ``***``, whatever it holds.
    """
    if not isinstance(text, str):
        raise DevRevInvalidInputError(label, _redacted(str(text)), "must be a proxy URL such as http://host:3128")
    raw = text.strip()
    if "://" not in raw:
        raw = "http://" + raw
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        parts = None  # raised below, outside this clause: urllib's error quotes the "port", a password maybe
    # An '@' past the authority: a password holding '/', '?' or '#' unencoded, which urlsplit cut short and
    # may have turned into the host (http://u:12/x@proxy reads as host u, port 12). Refused, not guessed.
    if parts is None or "@" in parts.path + parts.query + parts.fragment:
        expected = "must be a proxy URL such as http://host:3128"
        if "@" in raw:
            expected += ", its password percent-encoded (/ ? # @ as %2F %3F %23 %40)"
        raise DevRevInvalidInputError(label, _redacted(text), expected)
    if parts.scheme.lower() != "http":
        raise DevRevInvalidInputError(
            label,
            _redacted(text),
            "must be an http:// proxy URL (HTTPS to DevRev goes through it in a CONNECT tunnel)",
        )
    if not parts.hostname:
        raise DevRevInvalidInputError(label, _redacted(text), "must name the proxy's host, e.g. http://host:3128")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    url = f"http://{host}:{port or 80}"
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return Proxy(url=url, username=username, password=password, source=source)


def tls_error(what: str, base_url: str, network: NetworkSettings, reason: str) -> DevRevTLSError:
    """
    The final error for a certificate DevRev's side presented that did not verify.

    :param what: ``METHOD /path`` of the request.
    :param reason: OpenSSL's words for what failed (unknown CA, host name mismatch, expired, ...).
    """
    via = f" through the proxy {network.proxy.display}" if network.proxy else ""
    return DevRevTLSError(
        f"{what} to {base_url}{via}: TLS certificate verification failed ({reason}), trusting "
        f"{network.trust_description()}. If your network re-signs TLS with a company CA, set the connection's "
        "ca_bundle extra (or REQUESTS_CA_BUNDLE) to a PEM file, or a directory hashed with openssl rehash, "
        "holding that CA. Not retried.",
        error_type="tls_verification_failed",
    )


def proxy_refused_error(what: str, base_url: str, proxy: Proxy, status: int) -> DevRevProxyError:
    """The final error for a proxy that answered the ``CONNECT`` with ``status`` (407, 403, ...)."""
    hint = {
        407: "the proxy wants credentials: check the user and password of the proxy URL",
        403: "the proxy forbids this destination",
    }.get(status, "the proxy refused the tunnel")
    return DevRevProxyError(
        f"{what} to {base_url}: the proxy {proxy.display} ({proxy.source}) answered the CONNECT with "
        f"{status}; {hint}. Not retried.",
        error_type="proxy_refused",
        detail=f"proxy status {status}",
    )


def proxy_failure(
    what: str, base_url: str, proxy: Proxy | None, status: int | None, reason: str | None = None
) -> DevRevError:
    """
    The error for a call that failed at its proxy: final if the proxy refused the ``CONNECT`` with a 4xx
    (:func:`proxy_refusal_is_final`), else a transient connection error (proxy down, or a 5xx: it could
    not reach DevRev), retried like a DevRev that is down.

    :param status: The proxy's answer to the ``CONNECT``; ``None`` when it could not be reached.
    :param reason: Why it could not be reached (refused, reset, could not resolve), when known.
    """
    if proxy is None:  # the transports raise proxy errors only when they used a proxy
        return DevRevServerError(f"{what} to {base_url} failed at a proxy", error_type="connection_error")
    if status is not None and proxy_refusal_is_final(status):
        return proxy_refused_error(what, base_url, proxy, status)
    return proxy_unreachable_error(what, base_url, proxy, status, reason)


def proxy_refusal_is_final(status: int) -> bool:
    """A 4xx to the ``CONNECT`` is the proxy's decision (final); a 5xx means it could not reach DevRev."""
    return 400 <= status < 500


def proxy_unreachable_error(
    what: str, base_url: str, proxy: Proxy, status: int | None = None, reason: str | None = None
) -> DevRevServerError:
    """A transient connection error: the proxy is down, or answered 5xx because it could not reach DevRev."""
    if status:
        cause = f"answered the CONNECT with {status} (it could not reach DevRev)"
    else:
        cause = f"could not be reached: {reason or 'refused, reset or closed'}"
    return DevRevServerError(
        f"{what} to {base_url} failed: the proxy {proxy.display} ({proxy.source}) {cause}",
        error_type="connection_error",
    )


_TUNNEL_STATUS = re.compile(r"Tunnel connection failed: (\d{3})")


def tunnel_status(error: BaseException) -> int | None:
    """The status a proxy answered a ``CONNECT`` with, as ``http.client`` reports it inside ``requests``."""
    for link in exception_chain(error):
        match = _TUNNEL_STATUS.search(str(link))
        if match:
            return int(match.group(1))
    return None


def exception_chain(error: BaseException) -> list[BaseException]:
    """``error`` and what it wraps: causes, contexts, urllib3's ``reason`` and exception arguments."""
    seen: list[BaseException] = []
    pending: list[Any] = [error]
    while pending:
        link = pending.pop(0)
        if not isinstance(link, BaseException) or any(link is s for s in seen):
            continue
        seen.append(link)
        pending += [link.__cause__, link.__context__, getattr(link, "reason", None), *link.args]
    return seen


def _blank_to_none(value: Any, default: Any) -> Any:
    return default if value is None or (isinstance(value, str) and not value.strip()) else value


def _redacted(text: str) -> str:
    # user:password@host -> user:***@host: never echo a proxy password in an error, whatever it holds.
    return split_credentials(text)[0]
