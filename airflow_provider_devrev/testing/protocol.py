"""Wire-level building blocks of the DevRev simulator: replies, contract errors and typed parameters.

Validation reports the first problem found, in the order the contract lists the fields, as one DevRev
error body: ``missing_required_field`` for an absent (or JSON ``null``) required field, ``invalid_field``
for an empty string or an out-of-range integer, ``invalid_enum_value`` for a value outside an enum,
``unexpected_json_type`` for a JSON value of the wrong type (names from the contract's
``error-bad-request-unexpected-json-type-type``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_devrev._json_text import json_text

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

JSON_TYPE = "application/json"


@dataclass(frozen=True)
class Reply:
    """What the transport sends: status, body, content type and extra headers, or nothing (``drop``).

    ``chunks`` (instead of ``body``) is a body generated while it is sent, with chunked transfer encoding, so a
    large one never sits in memory. ``cut_after`` closes the connection after that many bytes of the body, as a
    connection lost mid-answer would (the declared length or the final chunk never arrives).
    """

    status: int
    body: bytes = b""
    content_type: str | None = JSON_TYPE
    headers: tuple[tuple[str, str], ...] = ()
    drop: bool = False
    chunks: Iterable[bytes] | None = None
    cut_after: int | None = None


def json_reply(status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    """A JSON reply; non-ASCII text is sent as UTF-8 so ids round-trip byte for byte, and a lone surrogate
    as its ``\\u`` escape, as DevRev sends one.

    :param status: the HTTP status.
    :param payload: a JSON-serialisable value.
    :param headers: extra response headers.
    """
    body = json_text(payload).encode("utf-8")
    return Reply(status=status, body=body, headers=headers)


class ApiError(Exception):
    """A contract error response, raised from deep inside validation and turned into a reply once."""

    def __init__(self, status: int, type_: str, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"type": type_, "message": message, **fields}

    def reply(self) -> Reply:
        return json_reply(self.status, self.body)


def bad_request(type_: str, message: str, **fields: Any) -> ApiError:
    return ApiError(400, type_, message, **fields)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def json_type_name(value: Any) -> str:
    """The contract's name (``error-bad-request-unexpected-json-type-type``) for a JSON value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


class Params:
    """Typed access to request fields from a query string (all strings) or a JSON object body.

    :param values: decoded query parameters (one value each) or the parsed JSON body.
    :param from_json: whether ``values`` came from JSON, which decides type checks and list syntax.
    :param prefix: field-name prefix used in error bodies for nested objects (``created_at.``).
    """

    def __init__(self, values: Mapping[str, Any], *, from_json: bool, prefix: str = "") -> None:
        self.values = values
        self.from_json = from_json
        self.prefix = prefix

    def _name(self, name: str) -> str:
        return self.prefix + name

    def _typed(self, name: str, expected: str, ok: bool, value: Any) -> None:
        if not ok:
            raise bad_request(
                "unexpected_json_type",
                f"field {self._name(name)!r} must be of JSON type {expected}",
                field_name=self._name(name),
                expected=expected,
                actual=json_type_name(value),
            )

    def has(self, name: str) -> bool:
        return self.values.get(name) is not None

    def string(self, name: str, *, required: bool = False, allow_empty: bool = False) -> str | None:
        value = self.values.get(name)
        if value is None:
            if required:
                raise bad_request(
                    "missing_required_field",
                    f"missing required field {self._name(name)!r}",
                    field_name=self._name(name),
                )
            return None
        self._typed(name, "string", isinstance(value, str), value)
        if value == "" and not allow_empty:
            raise bad_request(
                "invalid_field", f"field {self._name(name)!r} must not be empty", field_name=self._name(name)
            )
        return str(value)

    def need_string(self, name: str) -> str:
        """A required non-empty string."""
        value = self.string(name, required=True)
        assert value is not None  # string(required=True) raises instead
        return value

    def need_enum(self, name: str, allowed: tuple[str, ...]) -> str:
        """A required value of an enum."""
        value = self.enum(name, allowed, required=True)
        assert value is not None  # enum(required=True) raises instead
        return value

    def enum(self, name: str, allowed: tuple[str, ...], *, required: bool = False) -> str | None:
        value = self.string(name, required=required, allow_empty=True)
        if value is not None and value not in allowed:
            raise bad_request(
                "invalid_enum_value",
                f"invalid value {value!r} for field {self._name(name)!r}",
                field_name=self._name(name),
                value=value,
                allowed_values=list(allowed),
            )
        return value

    def integer(self, name: str, *, minimum: int) -> int | None:
        value = self.values.get(name)
        if value is None:
            return None
        if self.from_json:
            self._typed(name, "number", isinstance(value, int | float) and not isinstance(value, bool), value)
            number = value if isinstance(value, int) else None
        else:
            text = str(value).strip()
            number = int(text) if text.lstrip("+-").isdigit() and text.isascii() else None
        if number is None or number < minimum:
            raise bad_request(
                "invalid_field",
                f"field {self._name(name)!r} must be an integer >= {minimum}",
                field_name=self._name(name),
            )
        return number

    def boolean(self, name: str) -> bool | None:
        value = self.values.get(name)
        if value is None:
            return None
        if not self.from_json and value in ("true", "false"):
            return bool(value == "true")
        self._typed(name, "bool", isinstance(value, bool), value)
        return value is True

    def string_list(self, name: str) -> list[str] | None:
        value = self.values.get(name)
        if value is None:
            return None
        if not self.from_json:
            # The contract sends query arrays comma-separated in one parameter.
            return [item for item in str(value).split(",") if item]
        ok = isinstance(value, list) and all(isinstance(item, str) for item in value)
        self._typed(name, "array", ok, value)
        return list(value)

    def obj(self, name: str) -> Params | None:
        value = self.values.get(name)
        if value is None:
            return None
        self._typed(name, "object", isinstance(value, dict), value)
        return Params(value, from_json=True, prefix=f"{self._name(name)}.")
