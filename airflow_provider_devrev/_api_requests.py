"""
The requests of DevRev's observability API contract: their arguments, validated, and what is sent.

Pure functions, no I/O (see :mod:`airflow_provider_devrev.contract`, which names everything here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import quote

from airflow_provider_devrev.exceptions import DevRevInvalidInputError

DEFAULT_BASE_URL = "https://api.devrev.ai"
PLATFORMS: tuple[str, ...] = ("android", "ios", "web")

SESSIONS_GET_PATH = "/observability.sessions.get"
DEV_USERS_SELF_PATH = "/dev-users.self"
SESSIONS_DATA_GET_PATH = "/observability.sessions.data.get"
DEVELOPER_INFO_GET_PATH = "/observability.sessions.developer-info.get"
#: Longest path-and-query sent as a GET; many proxies and load balancers refuse URLs over 8 KiB.
MAX_GET_URL_CHARS = 4096


def validate_platform(value: Any, field_name: str = "platform") -> str:
    """Return ``value`` if it is exactly one of DevRev's platforms, else raise naming the allowed ones."""
    if not isinstance(value, str) or value not in PLATFORMS:
        raise DevRevInvalidInputError(field_name, value, f"must be one of {', '.join(PLATFORMS)}")
    return value


def validate_text(value: Any, field_name: str) -> str:
    """
    Return ``value`` if it is a usable identifier string, else raise naming the field.

    DevRev requires length >= 1; a string of only whitespace, or one that starts or ends with whitespace, is
    accepted by the API but is always a DAG bug (an empty template rendered with a newline, an id copied
    with its trailing space), so it is refused too, shown with ``repr`` so the space is visible. Any other
    character, inner spaces included, is legal and is sent exactly as given.
    """
    if not isinstance(value, str):
        raise DevRevInvalidInputError(field_name, value, f"must be a string, not {type(value).__name__}")
    if not value.strip():
        raise DevRevInvalidInputError(field_name, value, "must be a non-empty string")
    if value != value.strip():
        # Copied from a spreadsheet or a log line with its space: DevRev would answer 404 until the timeout.
        raise DevRevInvalidInputError(field_name, value, "must not start or end with whitespace")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise DevRevInvalidInputError(field_name, value, "must be valid Unicode text") from None
    return value


@dataclass(frozen=True)
class ApiRequest:
    """
    One DevRev call, independent of the transport that will send it.

    :param method: ``GET`` or ``POST``.
    :param path: The dotted operation path, e.g. ``/observability.sessions.get``.
    :param query: Query parameters, already validated, in the order they are sent.
    :param body: JSON body for ``POST``.
    :param result_key: The key of the 200 body that holds the result (``session``, ``dev_user``, ...); empty
        for the whole body.
    """

    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    body: Mapping[str, Any] | None = field(default=None)
    result_key: str = ""

    def url(self, base_url: str) -> str:
        """The full URL, percent-encoded once, here, so both transports send byte-identical requests."""
        # A trigger sends the same request at every poll, thousands of waits at a time: percent-encoding
        # the query again each time was a tenth of the transport's CPU. The last URL is kept with the
        # request (a rotated host simply encodes it again).
        memo = self.__dict__.get("_url_memo")
        if memo is not None and memo[0] == base_url:
            return cast(str, memo[1])
        url = base_url.rstrip("/") + self._path_and_query()
        object.__setattr__(self, "_url_memo", (base_url, url))
        return url

    def _path_and_query(self) -> str:
        # Independent of the host, so it is encoded once even when the URL is asked for with two bases
        # (the length check of get_session_request, then the transport) or after a rotated host.
        encoded = self.__dict__.get("_path_and_query_memo")
        if encoded is None:
            encoded = self.path
            if self.query:
                encoded += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in self.query)
            object.__setattr__(self, "_path_and_query_memo", encoded)
        return cast(str, encoded)

    def describe(self) -> str:
        """``METHOD /path``: what logs and errors name, never the query (it may hold user ids)."""
        return f"{self.method} {self.path}"


def get_session_request(platform: Any, session_id: Any, version_key: Any) -> ApiRequest:
    """
    Validate the arguments of ``observability.sessions.get`` and describe the request.

    GET, as DevRev documents it first; but ids whose query would make a URL longer than proxies commonly
    accept go in the contract's equivalent POST form (same fields as a JSON body), so any id of any
    length reaches DevRev exactly as given.
    """
    query = (
        ("platform", validate_platform(platform)),
        ("session_id", validate_text(session_id, "session_id")),
        ("version_key", validate_text(version_key, "version_key")),
    )
    get = ApiRequest("GET", SESSIONS_GET_PATH, query=query, result_key="session")
    if len(get.url("")) <= MAX_GET_URL_CHARS:
        return get
    return ApiRequest("POST", SESSIONS_GET_PATH, body=dict(query), result_key="session")


def dev_users_self_request() -> ApiRequest:
    """The cheapest authenticated call; used to test a connection."""
    return ApiRequest("GET", DEV_USERS_SELF_PATH, result_key="dev_user")


def get_session_recording_request(
    session_id: Any, version_key: Any, *, recording_id: Any = None, tab_id: Any = None
) -> ApiRequest:
    """
    Validate the arguments of ``observability.sessions.data.get`` and describe the request.

    A session's recording is named by exactly one of ``recording_id`` (a mobile session's, one of its
    ``recording_ids``) or ``tab_id`` (a web session's, one of its ``tab_ids``): DevRev cannot tell which one is
    meant otherwise. The answer is the whole body, a union on its ``recording`` field. GET, or the contract's
    equivalent POST form for ids too long for a URL.
    """
    given = {name: value for name, value in (("recording_id", recording_id), ("tab_id", tab_id)) if value is not None}
    if len(given) != 1:
        field_name, value = ("recording_id", recording_id) if not given else ("tab_id", tab_id)
        raise DevRevInvalidInputError(
            field_name,
            value,
            "give exactly one of recording_id (a mobile session's, one of its recording_ids) or tab_id (a web "
            f"session's, one of its tab_ids); got {'neither' if not given else 'both'}",
        )
    query = (
        ("session_id", validate_text(session_id, "session_id")),
        ("version_key", validate_text(version_key, "version_key")),
        *((name, validate_text(value, name)) for name, value in given.items()),
    )
    get = ApiRequest("GET", SESSIONS_DATA_GET_PATH, query=query)
    if len(get.url("")) <= MAX_GET_URL_CHARS:
        return get
    return ApiRequest("POST", SESSIONS_DATA_GET_PATH, body=dict(query))


def get_session_developer_info_request(session_id: Any, version_key: Any, tab_id: Any) -> ApiRequest:
    """
    Validate the arguments of ``observability.sessions.developer-info.get`` (a web session's console and
    network data) and describe the request: POST only, as the contract defines no GET form.
    """
    body = {
        "session_id": validate_text(session_id, "session_id"),
        "version_key": validate_text(version_key, "version_key"),
        "tab_id": validate_text(tab_id, "tab_id"),
    }
    return ApiRequest("POST", DEVELOPER_INFO_GET_PATH, body=body)
