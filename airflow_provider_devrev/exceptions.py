"""
Typed errors for DevRev API failures.

Every failure the provider reports is a :class:`DevRevError`, so a DAG author can catch one class, or a
subclass for one HTTP status. Each error carries the fields of DevRev's error body (``type``, ``message``,
``detail`` and the type-specific ones) and renders as one readable line that never contains the API token
or more than a short excerpt of an unexpected body.

No secret the process has read (:mod:`airflow_provider_devrev._secrets`) survives in an error's text: its
fields are hidden when it is built, and an excerpt or a quoted value is hidden *before* it is cut, since a
secret cut in half no longer matches any mask.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_devrev._compat import AirflowException
from airflow_provider_devrev._secrets import hide, hide_optional

#: How much of a body that is not the promised JSON we quote in an error: enough to recognise an HTML
#: error page from a proxy, not enough to flood a log.
BODY_EXCERPT_CHARS = 200


class DevRevError(AirflowException):
    """
    Base class for every error raised by this provider when DevRev (or the way to it) fails.

    :param message: What went wrong, in words a DAG author can act on.
    :param status_code: The HTTP status, or ``None`` when no response arrived (connection error, timeout).
    :param error_type: DevRev's error ``type`` (``not_found``, ``token_revoked``, ...), when the body had one.
    :param detail: DevRev's ``detail`` field, when present.
    :param retry_after: Seconds DevRev asked us to wait (429), when it said.
    :param reference_id: DevRev's id for a 500, to quote when asking DevRev support.
    :param max_bytes: The request size limit DevRev reported with a 413.
    :param body: The parsed error body (a dict), for callers that need a type-specific field.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_type: str | None = None,
        detail: str | None = None,
        retry_after: float | None = None,
        reference_id: str | None = None,
        max_bytes: int | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        self.message = message
        # AirflowException declares ``status_code`` as the API server's HTTP status; ours is DevRev's.
        self.status_code = status_code  # type: ignore[assignment]
        self.error_type = error_type
        self.detail = detail
        self.retry_after = retry_after
        self.reference_id = reference_id
        self.max_bytes = max_bytes
        self.body = body or {}
        line = self._one_line()
        # A body, or a server echoing the request, may quote a secret: these texts end up in logs and in
        # trigger events, which Airflow stores unmasked. The line holds every field, so one search of it
        # serves the common case (a 404 at every poll of every trigger). ``error_type`` stays as it came,
        # since the retry policy reads it; its rendering in the line is hidden.
        if hide(line) != line:
            self.message, self.detail = hide(message), hide_optional(detail)
            self.reference_id = hide_optional(reference_id)
            line = hide(self._one_line())
        super().__init__(line)

    def _one_line(self) -> str:
        return _api_error_line(self.status_code, self.error_type, self.message, self.detail, self.reference_id)

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions cross process boundaries (task runner -> supervisor); keyword-only state would be
        # lost by the default pickling, which replays only ``args``.
        return (_rebuild, (type(self), self.message, self._state()))

    def _state(self) -> dict[str, Any]:
        return {
            "status_code": self.status_code,
            "error_type": self.error_type,
            "detail": self.detail,
            "retry_after": self.retry_after,
            "reference_id": self.reference_id,
            "max_bytes": self.max_bytes,
            "body": self.body,
        }


def _rebuild(cls: type[DevRevError], message: str, state: dict[str, Any]) -> DevRevError:
    return cls(message, **state)


def _api_error_line(
    status_code: int | None, error_type: str | None, message: str, detail: str | None, reference_id: str | None
) -> str:
    head = "DevRev API error"
    if status_code is not None:
        head += f" {status_code}"
    if error_type:
        head += f" ({error_type})"
    parts = [f"{head}: {message}"]
    if detail and detail not in message:
        parts.append(f"detail: {detail}")
    if reference_id:
        parts.append(f"reference_id: {reference_id}")
    # DevRev's texts (and an error type from a hostile body) may hold newlines: one log line stays one.
    return " ".join("; ".join(parts).split())


class DevRevBadRequestError(DevRevError):
    """400: DevRev rejected the request's parameters; retrying the same request cannot succeed."""


class DevRevAuthError(DevRevError):
    """401: the token is missing, wrong, expired or revoked, or the organisation is deactivated."""


class DevRevForbiddenError(DevRevError):
    """403: the token is valid but may not read these sessions."""


class DevRevNotFoundError(DevRevError):
    """404: no such session (yet). The sensor treats this as "not uploaded yet" and keeps waiting."""


class DevRevPayloadTooLargeError(DevRevError):
    """413: the request was larger than DevRev accepts (``max_bytes``)."""


class DevRevRateLimitError(DevRevError):
    """429: the per-user rate limit is spent; ``retry_after`` says for how long, when DevRev said."""


class DevRevServerError(DevRevError):
    """5xx, or no usable answer at all (connection refused or dropped, timeout), or a connection lookup that
    failed (``connection_lookup_failed``): usually transient."""


class DevRevUnexpectedResponseError(DevRevError):
    """The answer was not the JSON the contract promises: an HTML page from a proxy, a truncated body, ..."""


class DevRevTLSError(DevRevError):
    """
    DevRev's certificate (or the one a re-signing proxy presented) did not verify: unknown CA, wrong host
    name, expired. Final in every mode: waiting does not fix trust. Set the connection's ``ca_bundle``.
    """


class DevRevProxyError(DevRevError):
    """
    The proxy refused the tunnel to DevRev (407: credentials, 403: destination forbidden). Final in every
    mode. A proxy that is down is a transient :class:`DevRevServerError` instead, like a DevRev that is down.
    """


#: Errors without an HTTP status from DevRev, by ``error_type``, so a trigger event can be turned back into
#: the same class on the worker.
ERROR_CLASS_BY_TYPE: dict[str, type[DevRevError]] = {
    "tls_verification_failed": DevRevTLSError,
    "proxy_refused": DevRevProxyError,
}


class DevRevInvalidInputError(DevRevError, ValueError):
    """
    An argument was rejected before any request was sent.

    It is a ``ValueError`` too, so a DAG file with a literal bad value fails to import the way Airflow users
    expect from a bad operator argument.
    """

    def __init__(self, field_name: str, value: Any, expectation: str) -> None:
        self.field_name = field_name
        self.value = value
        self.expectation = expectation
        super().__init__(f"invalid {field_name}={_show(value)}: {expectation}", error_type="invalid_input")

    def _one_line(self) -> str:
        # Not an API error: no request was sent, so no status or DevRev type to show.
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field_name, self.value, self.expectation))


def _show(value: Any) -> str:
    # Hidden before the cut: a secret cut in half would match no mask. Callers redact what they know to be
    # secret in the value (a proxy URL's password); hide() adds every secret this process has read.
    text = hide(repr(hide(value) if isinstance(value, str) else value))
    return text if len(text) <= 80 else text[:77] + "..."


#: The class raised for each status the contract names; other 4xx are bad requests, other 5xx server errors.
ERROR_CLASS_BY_STATUS: dict[int, type[DevRevError]] = {
    400: DevRevBadRequestError,
    401: DevRevAuthError,
    403: DevRevForbiddenError,
    404: DevRevNotFoundError,
    413: DevRevPayloadTooLargeError,
    429: DevRevRateLimitError,
}


def error_class_for_status(status_code: int) -> type[DevRevError]:
    """Return the error class for an HTTP status that is not a success."""
    if status_code in ERROR_CLASS_BY_STATUS:
        return ERROR_CLASS_BY_STATUS[status_code]
    if status_code >= 500:
        return DevRevServerError
    if 400 <= status_code < 500:
        return DevRevBadRequestError
    return DevRevUnexpectedResponseError


def body_excerpt(text: str) -> str:
    """
    Shorten an unexpected body to one line of at most :data:`BODY_EXCERPT_CHARS` characters, every secret the
    process has read hidden first (a gateway's page may echo the request's headers, token included).
    """
    flat = " ".join(hide(text).split())
    if len(flat) <= BODY_EXCERPT_CHARS:
        return flat
    return flat[: BODY_EXCERPT_CHARS - 1] + "…"


__all__ = [
    "DevRevAuthError",
    "DevRevBadRequestError",
    "DevRevError",
    "DevRevForbiddenError",
    "DevRevInvalidInputError",
    "DevRevNotFoundError",
    "DevRevPayloadTooLargeError",
    "DevRevProxyError",
    "DevRevRateLimitError",
    "DevRevServerError",
    "DevRevTLSError",
    "DevRevUnexpectedResponseError",
    "error_class_for_status",
]
