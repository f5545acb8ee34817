"""
The "DevRev session" button on a task: a link to the session in DevRev's app, from the connection's
``session_url_template`` extra.

DevRev publishes no URL scheme for its app, so the provider guesses none: a connection without the extra gives
no link. The template is a URL with ``{platform}``, ``{session_id}`` and ``{version_key}`` placeholders, e.g.
``https://devrev.example.com/sessions/{session_id}?platform={platform}&app={version_key}``.

When the link is built: by the task, while it runs, from the connection it has read already (no second lookup),
and kept as the XCom ``devrev_session_url``; the button reads that XCom, as dbt-cloud's "Monitor Job Run" does.
So nothing is looked up when a DAG file is parsed or a page is shown, a run keeps the address it had even after
the template changes, and the same code serves Airflow 2.11 (whose webserver calls :meth:`get_link`) and 3.x
(whose worker calls it when the task ends and stores what it returns for the UI).

A template that cannot make a safe address (an unknown placeholder, not ``http(s)://``, credentials or a placeholder
in its host) or a value that would make a ``..`` path segment never fails a task: the task logs why, naming the
extra and the connection, and shows no link; ``airflow connections test`` fails with the same words for a template.
"""

from __future__ import annotations

import string
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from airflow_provider_devrev._compat import BaseOperatorLink
from airflow_provider_devrev._values import extra_label

if TYPE_CHECKING:
    from airflow_provider_devrev._compat import Context
    from airflow_provider_devrev.connection import ConnectionSettings

#: The connection extra holding the template.
SESSION_URL_TEMPLATE = "session_url_template"
#: The XCom a task keeps its link in (the button reads it).
SESSION_URL_XCOM_KEY = "devrev_session_url"
#: What a template may name, each replaced by the task's value, URL-quoted.
PLACEHOLDERS = ("platform", "session_id", "version_key")


class DevRevSessionLink(BaseOperatorLink):
    """The "DevRev session" button: the address the task kept (:data:`SESSION_URL_XCOM_KEY`), or none."""

    name = "DevRev session"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        """
        The session's address in DevRev, as the task built it while running; ``""`` (no button) without one.

        :param operator: The task the button is on (unused: everything was decided when it ran).
        :param ti_key: The task instance whose address to show (a mapped task has one per map index).
        """
        from airflow.providers.common.compat.sdk import XCom

        url = XCom.get_value(key=SESSION_URL_XCOM_KEY, ti_key=ti_key)
        # Airflow 3 stores what this returns as text: None would show as a link to "None".
        return url if isinstance(url, str) else ""


def template_problem(template: Any) -> str | None:
    """
    Why ``template`` cannot make a session's address, in words naming what to fix; ``None`` if it can.

    :param template: The extra's value; ``None`` and ``""`` (no link) are fine.
    """
    if template is None or template == "":
        return None
    if not isinstance(template, str):
        return "must be a URL (text)"
    if any(c.isspace() or not c.isprintable() for c in template):
        return "contains whitespace or a control character; URL-encode it (%20)"
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template)]
    except ValueError:
        return "has an unmatched '{' or '}' (write '{{' or '}}' for a literal brace)"
    for name, spec, conversion in fields:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            shown = "{}" if name == "" else "{" + name + "}"
            return f"has the unknown placeholder {shown}: use {_placeholders()}"
        if spec or conversion:
            return f"has {{{name}}} with a format or conversion: write it bare, {_placeholders()}"
    parts = urlsplit(_fill(template, {name: "x" for name in PLACEHOLDERS}))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    # Filled twice with different values: a scheme or host that changes is one a task's values would choose
    # (a session id from a DAG run's conf could send the button to any site).
    if urlsplit(_fill(template, {name: "y" for name in PLACEHOLDERS}))[:2] != parts[:2]:
        return f"has a placeholder before the path: the host must be fixed, and {_placeholders()} come after it"
    if parts.username is not None or parts.password is not None:
        return "contains credentials (user:password@): everyone who sees the task would see them"
    return None


def session_url(template: str, *, platform: str | None, session_id: str, version_key: str) -> str:
    """
    The session's address: ``template`` with each placeholder replaced by its value, URL-quoted (a ``/``, ``&``
    or ``#`` in a version key cannot change the address's shape).

    :param template: A template :func:`template_problem` accepts.
    :param platform: ``android``, ``ios`` or ``web``; ``None`` when the task cannot tell (a mobile recording
        fetched without ``platform``), which only a template without ``{platform}`` accepts.
    :raises ValueError: the template needs a value the task does not have, or a value would make a ``.`` or
        ``..`` path segment (``quote`` leaves dots alone; a browser would open another page of the site).
    """
    values = {"platform": platform, "session_id": session_id, "version_key": version_key}
    missing = [name for name in _names(template) if values[name] is None]
    if missing:
        raise ValueError(f"uses {{{missing[0]}}}, which this task does not know")
    url = _fill(template, {name: quote(str(value), safe="") for name, value in values.items() if value is not None})
    if any(segment.lower().replace("%2e", ".") in (".", "..") for segment in urlsplit(url).path.split("/")):
        raise ValueError("gives the address a '.' or '..' path segment, which a browser would resolve to another page")
    return url


def keep_session_url(
    task: Any,
    context: Context,
    settings: ConnectionSettings | None,
    *,
    platform: str | None,
    session_id: str,
    version_key: str,
) -> str | None:
    """
    Build the task's session address and keep it as its :data:`SESSION_URL_XCOM_KEY` XCom; return it.

    Without a link the XCom is ``""``, kept all the same: Airflow 3 asks for the link when every task ends, and
    its worker logs an ERROR for an XCom that does not exist. A bad template never fails the task (it fetches
    sessions; the link is a convenience): what stops the link is logged at WARNING, naming the extra.

    :param task: The running operator or sensor (its ``log`` and ``devrev_conn_id`` are used).
    :param context: The task's context (its ``ti`` keeps the XCom).
    :param settings: The connection as the task read it; ``None`` if it never could (no link then).
    """
    url = _url_or_none(task, settings, platform=platform, session_id=session_id, version_key=version_key)
    ti = context.get("ti")
    if ti is not None:  # a unit test may call poke() or execute() with a context of its own
        ti.xcom_push(key=SESSION_URL_XCOM_KEY, value=url or "")
    return url


def _url_or_none(
    task: Any, settings: ConnectionSettings | None, *, platform: str | None, session_id: str, version_key: str
) -> str | None:
    template = settings.session_url_template if settings is not None else None
    if not template or settings is None:
        return None
    problem = template_problem(template)
    if problem is None:
        try:
            url = session_url(template, platform=platform, session_id=session_id, version_key=version_key)
        except ValueError as err:
            problem = f"{err}" + (" (pass platform= to the task)" if platform is None else "")
        else:
            # A token pasted into the template by mistake would be shown to everyone who opens the task.
            if settings.token not in url and quote(settings.token, safe="") not in url:
                return url
            problem = "contains the connection's API token"
    task.log.warning("No DevRev session link: %s %s", extra_label(SESSION_URL_TEMPLATE, task.devrev_conn_id), problem)
    return None


def _names(template: str) -> list[str]:
    """The placeholders ``template`` uses (a literal ``{{platform}}`` is none)."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def _fill(template: str, values: dict[str, str]) -> str:
    return template.format_map(values)


def _placeholders() -> str:
    return ", ".join("{" + name + "}" for name in PLACEHOLDERS)
