"""
Which CAs a connection trusts: the ``ca_bundle`` extra, else ``REQUESTS_CA_BUNDLE``, else ``SSL_CERT_FILE``
and/or ``SSL_CERT_DIR``, else the libraries' defaults. Part of the network decision
(:func:`airflow_provider_devrev.network.network_settings`), kept apart because paths need checking.

The order is what users of the two libraries expect: the connection's own setting first; then requests'
variable, which a worker's environment sets for Python programs in particular; then OpenSSL's two, which it
reads together (both set: the file and the directory are trusted). Every path is checked when the
connection is read, so a wrong one fails the task before any request, naming where it came from. The
transports never read these variables themselves: requests ignores them under ``trust_env=False``, and
aiohttp's default context reads OpenSSL's only when aiohttp is imported, so neither could be relied on to
agree with the other.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from airflow_provider_devrev.exceptions import DevRevInvalidInputError

#: The variables read when the connection has no ``ca_bundle``, in order.
CA_ENV = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")

#: What ``openssl rehash`` (or ``c_rehash``) names a CA certificate or CRL in a directory: OpenSSL finds a CA
#: in a directory by these names only, so a directory without one trusts nothing.
_HASHED_NAME = re.compile(r"[0-9a-f]{8}\.r?[0-9]+")
_PATH_OR_DIRECTORY = (
    "must be a readable PEM file of CA certificates, or a directory of them named by their hashes (openssl rehash DIR)"
)


def decide_trust(ca_bundle: Any, conn_id: str, env: Mapping[str, str]) -> tuple[str | None, str | None, str | None]:
    """
    The CAs to trust instead of the libraries' defaults: ``(ca_file, ca_dir, source)``, all ``None`` for the
    defaults.

    :param ca_bundle: The ``ca_bundle`` extra, ``None`` when unset or blank.
    :param conn_id: The connection, named in errors.
    :param env: The environment snapshot.
    :raises DevRevInvalidInputError: a path that does not exist, is not readable, or is a directory with no
        hashed names, naming the extra or variable and its value.
    """
    if ca_bundle is not None:
        return (*_file_or_directory(ca_bundle, f"extra ca_bundle of connection {conn_id!r}"), "extra ca_bundle")
    bundle = env.get("REQUESTS_CA_BUNDLE", "")
    if bundle.strip():
        return (*_file_or_directory(bundle, "environment variable REQUESTS_CA_BUNDLE"), "REQUESTS_CA_BUNDLE")
    cert_file, cert_dir = env.get("SSL_CERT_FILE", "").strip(), env.get("SSL_CERT_DIR", "").strip()
    ca_file = _file(cert_file, "environment variable SSL_CERT_FILE") if cert_file else None
    ca_dir = _directories(cert_dir, "environment variable SSL_CERT_DIR") if cert_dir else None
    source = " and ".join(name for name, value in (("SSL_CERT_FILE", ca_file), ("SSL_CERT_DIR", ca_dir)) if value)
    return ca_file, ca_dir, source or None


def _file_or_directory(value: Any, label: str) -> tuple[str | None, str | None]:
    # One path, a file or a directory, as requests takes it for ``verify``.
    if not isinstance(value, str) or not value.strip():
        raise DevRevInvalidInputError(label, value, _PATH_OR_DIRECTORY)
    path = value.strip()
    if os.path.isdir(path):
        return None, _directory(path, value, label)
    if os.path.isfile(path) and os.access(path, os.R_OK):
        return path, None
    raise DevRevInvalidInputError(label, value, _PATH_OR_DIRECTORY)


def _file(value: str, label: str) -> str:
    if not (os.path.isfile(value) and os.access(value, os.R_OK)):
        hint = " (a directory goes in SSL_CERT_DIR)" if os.path.isdir(value) else ""
        raise DevRevInvalidInputError(label, value, f"must be a readable PEM file of CA certificates{hint}")
    return value


def _directories(value: str, label: str) -> str:
    # OpenSSL reads SSL_CERT_DIR as a list, separated as PATH is.
    parts = [part for part in value.split(os.pathsep) if part]
    for part in parts:
        if not os.path.isdir(part):
            raise DevRevInvalidInputError(
                label, value, f"{part!r} is not a directory (a list of directories of hashed CA certificates)"
            )
        _directory(part, value, label)
    return os.pathsep.join(parts)


def _directory(path: str, value: str, label: str) -> str:
    if not os.access(path, os.R_OK | os.X_OK):
        raise DevRevInvalidInputError(label, value, f"the directory {path!r} is not readable")
    with os.scandir(path) as entries:
        if not any(_HASHED_NAME.fullmatch(entry.name) for entry in entries):
            raise DevRevInvalidInputError(
                label,
                value,
                f"the directory {path!r} holds no certificate named by its hash, so OpenSSL would find no CA "
                f"in it: run `openssl rehash {path}` (or c_rehash), or name a PEM file instead",
            )
    return path
