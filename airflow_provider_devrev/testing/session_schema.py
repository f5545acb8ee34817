"""
A session checked against the contract's session schema (the packaged ``openapi.yaml``): each line of the
simulator's ``--sessions`` file is, before anything is served, so a session missing ``is_crash`` stops the
simulator at start instead of failing a user's DAG with a ``KeyError``.

The schema is read from the installed contract (:func:`~airflow_provider_devrev.testing.contract.openapi_path`),
never from a copy of its own, so the check follows the contract. ``jsonschema`` does the checking (OpenAPI 3.0's
schema objects are JSON Schema draft 4 with extra keywords, which it ignores); the variant is chosen by
``type`` here rather than through the schema's ``oneOf``, whose failure would only say that no variant matched.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError, best_match

from airflow_provider_devrev.testing.contract import openapi_path

__all__ = ["check_session", "session_problem"]

#: The schema of each session ``type``, under ``#/components/schemas``.
_VARIANTS = {"mobile": "mobile-session", "web": "web-session"}
#: The schema of the fields every session has (``type``, ``platform``, ``session_id``), beside its variant's.
_COMMON = "observability-session"


def check_session(session: Mapping[str, Any], *, name: str = "session") -> None:
    """
    Check ``session`` against the contract's schema for its ``type``.

    :param session: A session object as DevRev returns it.
    :param name: How the session is named in the message (its fields are named ``name.field.subfield``).
    :raises ValueError: the first problem found, naming the field: a missing required field, a value of the
        wrong type, a value outside its enum, or a ``type`` that is neither ``mobile`` nor ``web``.
    """
    problem = session_problem(session, name=name)
    if problem is not None:
        raise ValueError(problem)


def session_problem(session: Mapping[str, Any], *, name: str = "session") -> str | None:
    """:func:`check_session`'s message for ``session``, or ``None`` when it is valid."""
    kind = session.get("type") if isinstance(session, Mapping) else None
    validator = _validators().get(kind) if isinstance(kind, str) else None
    if validator is None:
        return f"{_field(name, ['type'])} must be one of {sorted(_VARIANTS)}, got {kind!r}"
    error = best_match(validator.iter_errors(session))
    return None if error is None else _describe(error, name)


@functools.cache
def _validators() -> dict[str, Draft4Validator]:
    # Parsed once per process, and only when a session is checked: the file is 80 KB of YAML.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = yaml.load(openapi_path().read_text(encoding="utf-8"), Loader=loader)
    components = spec["components"]
    schemas = components["schemas"]
    # The common fields without the oneOf (and its discriminator) that picks the variant: picked by type here.
    common = {key: value for key, value in schemas[_COMMON].items() if key not in ("oneOf", "discriminator")}
    return {
        kind: Draft4Validator(
            {"allOf": [common, {"$ref": f"#/components/schemas/{variant}"}], "components": components}
        )
        for kind, variant in _VARIANTS.items()
    }


def _describe(error: ValidationError, name: str) -> str:
    path = list(error.absolute_path)
    if error.validator == "required":
        missing = [field for field in _strings(error.validator_value) if field not in error.instance]
        fields = ", ".join(repr(field) for field in missing)
        return f"{_field(name, path)} is missing the required field{'s' if len(missing) > 1 else ''} {fields}"
    got = f"got {error.instance!r:.80}"
    if error.validator == "type":
        return f"{_field(name, path)} must be of type {error.validator_value}, {got}"
    if error.validator == "enum":
        return f"{_field(name, path)} must be one of {list(error.validator_value)}, {got}"
    return f"{_field(name, path)}: {error.message:.200}"


def _field(name: str, path: Iterable[Any]) -> str:
    return repr(".".join([name, *(str(part) for part in path)]))


def _strings(values: Any) -> list[str]:
    return [value for value in values if isinstance(value, str)]
