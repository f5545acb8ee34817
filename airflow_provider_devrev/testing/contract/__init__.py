"""The DevRev observability API contract this provider targets, shipped inside the package.

``openapi.yaml`` (OpenAPI 3.0.3) and ``README.md`` beside this file are a copy of the project's upstream
reference, unchanged. The simulator is checked against it by the project's tests, and users can validate their
own fakes or recorded answers against the same file::

    from airflow_provider_devrev.testing.contract import openapi_path

    spec = openapi_path()  # a pathlib.Path to the installed openapi.yaml
"""

from __future__ import annotations

from pathlib import Path

OPENAPI_FILE = "openapi.yaml"


def openapi_path() -> Path:
    """The installed ``openapi.yaml``.

    :raises FileNotFoundError: the file is missing from the installation (a broken wheel); the message says
        where it was looked for.
    """
    path = Path(__file__).with_name(OPENAPI_FILE)
    if not path.is_file():
        raise FileNotFoundError(
            f"the DevRev contract {OPENAPI_FILE} is missing from the installed package: expected {path}"
        )
    return path
