"""Contract-level request handling of the DevRev simulator: the endpoints and their routing.

Everything here is transport-free: it takes decoded parameters and returns a
:class:`~airflow_provider_devrev.testing.protocol.Reply`, which keeps the endpoint logic testable apart
from faults and sockets. A POST body that is not a JSON object is answered 400 ``parse_error``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_devrev.testing.data import MOBILE_PLATFORMS, PLATFORMS
from airflow_provider_devrev.testing.filters import build_filter, created_range
from airflow_provider_devrev.testing.paging import CursorError, ListingStyle, SortSpec, decode_cursor, encode_cursor
from airflow_provider_devrev.testing.protocol import (
    ApiError,
    Params,
    Reply,
    bad_request,
    json_reply,
    not_found,
)
from airflow_provider_devrev.testing.recordings import developer_info, recording_chunks
from airflow_provider_devrev.testing.store import DEFAULT_SORT, SORT_FIELDS, SessionStore

if TYPE_CHECKING:
    from collections.abc import Mapping

LIST_MODES = ("after", "before")
SESSION_KINDS = ("mobile", "web")

DEV_USER: dict[str, Any] = {
    "id": "DEVU-1",
    "display_id": "DEVU-1",
    "display_name": "simulator",
    "full_name": "DevRev Simulator",
    "email": "simulator@example.invalid",
    "state": "active",
}


def parse_sort(items: list[str] | None, default: SortSpec = DEFAULT_SORT) -> SortSpec:
    """Parse ``sort_by`` items such as ``created_at`` or ``session_duration_ms:desc``."""
    if not items:
        return default
    allowed = [f"{field}{suffix}" for field in SORT_FIELDS for suffix in ("", ":asc", ":desc")]
    spec: list[tuple[str, bool]] = []
    for item in items:
        field, _, direction = item.partition(":")
        if item not in allowed or any(field == seen for seen, _ in spec):
            raise bad_request(
                "value_not_permitted",
                f"cannot sort by {item!r}",
                field_name="sort_by",
                allowed_values=allowed,
            )
        spec.append((field, direction == "desc"))
    return tuple(spec)


def sessions_get(params: Params, store: SessionStore, *, now: float) -> Reply:
    """``observability.sessions.get`` (GET query or POST body)."""
    platform = params.need_enum("platform", PLATFORMS)
    session_id = params.need_string("session_id")
    version_key = params.need_string("version_key")
    session = store.lookup(platform=platform, session_id=session_id, version_key=version_key, now=now)
    if session is None:
        raise not_found(f"session {session_id!r} not found for version_key {version_key!r} on {platform}")
    return json_reply(200, {"session": session})


def sessions_list(
    params: Params, store: SessionStore, *, now: float, page_size: int, style: ListingStyle | None = None
) -> Reply:
    """``observability.sessions.list``; filters apply to POST bodies only, as in the contract."""
    style = style or ListingStyle()
    kind = params.need_enum("type", SESSION_KINDS) if params.from_json else None
    platform = params.need_enum("platform", PLATFORMS)
    version_key = params.need_string("version_key")
    if kind is not None:
        allowed = MOBILE_PLATFORMS if kind == "mobile" else ("web",)
        if platform not in allowed:
            raise bad_request(
                "value_not_permitted",
                f"platform {platform!r} does not match session type {kind!r}",
                field_name="platform",
                allowed_values=list(allowed),
            )
    cursor_text = params.string("cursor", allow_empty=True)
    limit = params.integer("limit", minimum=1) or page_size
    mode = params.enum("mode", LIST_MODES) or "after"
    sort = style.default_sort if style.ignore_sort_by else parse_sort(params.string_list("sort_by"), style.default_sort)
    matches = build_filter(params, kind) if kind is not None else _match_all
    created = params.obj("created_at") if kind is not None else None
    created_from = created_range(created)[0] if created is not None else None
    cursor = None
    if cursor_text:
        try:
            cursor = decode_cursor(cursor_text, sort, style.cursor_mode)
        except CursorError as exc:
            raise bad_request("invalid_field", str(exc), field_name="cursor") from exc
    sessions, next_key, prev_key = store.page(
        version_key=version_key,
        platform=platform,
        matches=matches,
        created_from=created_from,
        sort=sort,
        cursor=cursor,
        mode=mode,
        limit=limit,
        now=now,
        cursor_mode=style.cursor_mode,
    )
    payload: dict[str, Any] = {"sessions": sessions}
    if next_key is not None:
        payload["next_cursor"] = encode_cursor(next_key, sort, style.cursor_mode)
    if prev_key is not None:
        payload["prev_cursor"] = encode_cursor(prev_key, sort, style.cursor_mode)
    return json_reply(200, payload)


def _match_all(session: dict[str, Any], created_ts: float) -> bool:
    return True


def recording_key(session: Mapping[str, Any], recording_id: str | None, tab_id: str | None) -> str | None:
    """The recording (mobile) or tab (web) of ``session`` that the ids name, or None if it has none such."""
    if session["type"] == "web":
        return tab_id if tab_id is not None and tab_id in (session.get("tab_ids") or ()) else None
    return recording_id if recording_id is not None and recording_id in (session.get("recording_ids") or ()) else None


def sessions_data_get(
    params: Params, store: SessionStore, *, now: float, seed: int, inflated: Mapping[str, tuple[int, str]]
) -> Reply:
    """``observability.sessions.data.get`` (GET query or POST body): one recording of a session, or one tab."""
    session_id = params.need_string("session_id")
    version_key = params.need_string("version_key")
    recording_id = params.string("recording_id")
    tab_id = params.string("tab_id")
    if recording_id is None and tab_id is None:
        raise bad_request(
            "missing_required_field",
            "one of 'recording_id' (a mobile session's) or 'tab_id' (a web session's) is required",
            field_name="recording_id",
        )
    if recording_id is not None and tab_id is not None:
        raise bad_request("bad_request", "give only one of 'recording_id' and 'tab_id'")
    session = store.find(session_id=session_id, version_key=version_key, now=now)
    if session is None:
        raise not_found(f"session {session_id!r} not found for version_key {version_key!r}")
    key = recording_key(session, recording_id, tab_id)
    if key is None:
        which = f"tab {tab_id!r}" if tab_id is not None else f"recording {recording_id!r}"
        raise not_found(f"{which} not found in {session['type']} session {session_id!r}")
    min_bytes, shape = inflated.get(session_id, (0, "activity"))
    chunks = recording_chunks(session, key, seed=seed, version_key=version_key, min_bytes=min_bytes, shape=shape)
    if min_bytes:
        return Reply(200, chunks=chunks)  # generated while it is sent
    return Reply(200, body=b"".join(chunks))


def sessions_developer_info_get(params: Params, store: SessionStore, *, now: float, seed: int) -> Reply:
    """``observability.sessions.developer-info.get`` (POST only): a web tab's console and network data.

    The contract gives this operation no 404: an unknown session or tab answers 400 ``invalid_id``.
    """
    session_id = params.need_string("session_id")
    version_key = params.need_string("version_key")
    tab_id = params.need_string("tab_id")
    session = store.find(session_id=session_id, version_key=version_key, now=now)
    if session is None or session["type"] != "web":
        raise bad_request(
            "invalid_id",
            f"no web session {session_id!r} for version_key {version_key!r}",
            field_name="session_id",
        )
    if recording_key(session, None, tab_id) is None:
        raise bad_request("invalid_id", f"no tab {tab_id!r} in web session {session_id!r}", field_name="tab_id")
    return json_reply(200, developer_info(session, tab_id, seed=seed, version_key=version_key))


def dev_users_self() -> Reply:
    """``dev-users.self``: the fixed simulated user."""
    return json_reply(200, {"dev_user": dict(DEV_USER)})


ROUTES: dict[str, tuple[str, ...]] = {
    "/observability.sessions.get": ("GET", "POST"),
    "/observability.sessions.list": ("GET", "POST"),
    "/observability.sessions.data.get": ("GET", "POST"),
    # The contract defines only POST here: a GET answers 405 (outside the contract), as any other method.
    "/observability.sessions.developer-info.get": ("POST",),
    "/dev-users.self": ("GET",),
}


def dispatch(
    method: str,
    path: str,
    query: Mapping[str, str],
    body: Any,
    body_error: str | None,
    store: SessionStore,
    *,
    now: float,
    page_size: int,
    seed: int = 0,
    inflated: Mapping[str, tuple[int, str]] | None = None,
    style: ListingStyle | None = None,
) -> Reply:
    """Route an authenticated request and turn contract errors into replies.

    :param method: the HTTP method.
    :param path: the decoded path without query.
    :param query: decoded query parameters.
    :param body: the parsed JSON body of a POST.
    :param body_error: why the POST body could not be parsed, or None.
    :param store: the session store.
    :param now: the simulator clock's current value.
    :param page_size: the default list page size.
    :param style: how lists are paged (cursor mode, default order, whether ``sort_by`` is heeded).
    :param seed: the simulator's seed, which (with the ids) determines every generated recording.
    :param inflated: session id -> the least size in bytes of its recordings and their shape (see
        ``inflate_recording``).
    """
    try:
        methods = ROUTES.get(path)
        if methods is None:
            raise not_found(f"no such endpoint {path!r} (the simulator serves {', '.join(ROUTES)})")
        if method not in methods:
            # 405 is outside the contract; a JSON body in DevRev's error shape keeps clients' parsers happy.
            allow = (("Allow", ", ".join(methods)),)
            return json_reply(405, {"type": "method_not_allowed", "message": f"{method} not allowed"}, allow)
        if path == "/dev-users.self":
            return dev_users_self()
        if method == "POST":
            if body_error is not None:
                raise bad_request("parse_error", body_error)
            params = Params(body, from_json=True)
        else:
            params = Params(query, from_json=False)
        if path == "/observability.sessions.get":
            return sessions_get(params, store, now=now)
        if path == "/observability.sessions.data.get":
            return sessions_data_get(params, store, now=now, seed=seed, inflated=inflated or {})
        if path == "/observability.sessions.developer-info.get":
            return sessions_developer_info_get(params, store, now=now, seed=seed)
        return sessions_list(params, store, now=now, page_size=page_size, style=style)
    except ApiError as exc:
        return exc.reply()
