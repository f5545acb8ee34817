"""
OpenLineage: the DevRev sessions a task read and the file it wrote, as OpenLineage datasets.

The OpenLineage provider (``apache-airflow-providers-openlineage``) calls the ``get_openlineage_facets_on_*``
methods of :class:`OpenLineageMixin` when a task starts, completes or fails, and nothing else does. This module
imports nothing from OpenLineage or its provider at module level (the operators import it when a DAG file is
parsed); each method imports them when called, which only that provider does, so the operators work as before
where it is not installed.

The names (``docs/lineage.md``):

- input: namespace ``devrev://<host>[:<port>]``, DevRev's API host from the connection (the port only when
  it is not the scheme's default), and name ``<platform>/<version_key>``: the sessions one app version
  recorded on one platform. OpenLineage's naming spec has no entry for an API; this follows its rule for
  every entry it has (the namespace is the data source as ``scheme://authority``, the name is the dataset
  within it).
- output: the ``output_path`` written, named as the OpenLineage provider names that storage for any other
  task (its asset converters: ``file`` and ``/path`` for a local file, ``s3://bucket`` and the key for S3),
  without the ``conn_id`` an ``ObjectStoragePath`` URL may carry.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_devrev._arguments import LazyHookMixin

if TYPE_CHECKING:
    from airflow.providers.common.compat.openlineage.facet import Dataset
    from airflow.providers.openlineage.extractors import OperatorLineage

#: The scheme of a DevRev dataset's namespace: it names the kind of data source, as ``postgres://`` does.
SCHEME = "devrev"
_DEFAULT_PORTS = {"https": 443, "http": 80}


def devrev_namespace(base_url: str) -> str:
    """
    The namespace of the sessions a connection reads: ``devrev://`` and the API's host, with its port only
    when the URL names one that is not its scheme's default (``devrev://api.devrev.ai``,
    ``devrev://127.0.0.1:8089``). A path prefix (a gateway's) is left out, as are credentials.

    :param base_url: The connection's base URL (``ConnectionSettings.base_url``).
    """
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 address keeps its brackets, or its port could not be told from it
        host = f"[{host}]"
    port = parts.port
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{port}"
    return f"{SCHEME}://{host}"


def sessions_dataset_name(platform: str, version_key: str) -> str:
    """
    The name of the sessions one app version recorded on one platform: ``android/com.acme.shop@5.2.0``.

    :param platform: ``android``, ``ios`` or ``web``; ``mobile`` for a mobile recording whose platform the
        task does not know (DevRev names a recording by session and version key alone).
    :param version_key: The app version key, as given to DevRev.
    """
    return f"{platform}/{version_key}"


def storage_uri(output_path: Any) -> str:
    """
    The URL of an ``output_path`` as the export wrote it, without credentials, query or fragment: an absolute
    path becomes ``file://`` and a relative one is taken from the worker's current folder, as the export
    takes it. No filesystem is attached and nothing is read.

    :param output_path: A path or URL, or an ``ObjectStoragePath`` (its ``str`` is its URL).
    """
    text = str(output_path)
    if "://" not in text:
        return "file://" + os.path.abspath(text)
    parts = urlsplit(text)
    # An ObjectStoragePath URL may name its Airflow connection (s3://aws_default@bucket/key): not part of
    # where the data is, and a user:password there must never reach a lineage backend.
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def output_dataset(output_path: Any) -> Dataset:
    """
    The OpenLineage dataset of an ``output_path``, named as the OpenLineage provider names that storage for
    any other task: by the converter the storage's Airflow provider registers for assets (what the provider
    uses for an ``ObjectStoragePath`` a task writes), else by its naming of an object-storage URI (``s3``,
    ``gs``, ``hdfs``, ``file``: ``scheme://authority`` and the path; another scheme: the scheme and the rest).

    :param output_path: A path or URL, or an ``ObjectStoragePath``, as the task's ``output_path`` takes it.
    """
    from airflow.providers.common.compat.assets import Asset
    from airflow.providers.openlineage.extractors.manager import ExtractorManager
    from airflow.providers.openlineage.utils.utils import translate_airflow_asset

    uri = storage_uri(output_path)
    try:
        converted = translate_airflow_asset(Asset(uri=uri), None)
    except Exception:  # a URL Airflow's asset rules refuse: the provider's own fallback names it below
        converted = None
    parts = urlsplit(uri)
    if converted is None and parts.scheme == "file":
        from airflow.providers.common.compat.openlineage.facet import Dataset

        # The file converter's naming (common-io), which Airflow 2.11 never reaches for a path with a non-ASCII
        # character (its Dataset takes ASCII URIs only): the object-storage fallback would name the same file
        # "file://" and its path without the leading "/" there, another dataset than on Airflow 3.
        converted = Dataset(namespace=f"file://{parts.netloc}" if parts.netloc else "file", name=parts.path)
    if converted is None:
        converted = ExtractorManager.convert_to_ol_dataset_from_object_storage_uri(uri)
    if converted is None:  # no "/" at all: nothing to split into a namespace and a name
        from airflow.providers.common.compat.openlineage.facet import Dataset

        converted = Dataset(namespace=parts.scheme, name=uri)
    return converted


class OpenLineageMixin(LazyHookMixin):
    """
    Lineage for OpenLineage, mixed into the operators that read DevRev sessions: the sessions as the input
    and, when the task has an ``output_path``, that file or object as the output. A task's start and its
    completion report both (at the start, the file it is about to write); a failure reports the input alone,
    since a failed export publishes nothing.
    """

    platform: str
    version_key: str
    #: Where the task writes; ``GetSessionOperator`` has no such argument: nothing but its XCom.
    output_path: Any = None

    def _lineage_platform(self) -> str:
        """The platform the sessions were recorded on: the rendered ``platform`` argument."""
        return str(self.platform)

    def _lineage_files(self) -> tuple[list[Any], list[Any]]:
        """The files the task reads besides DevRev's sessions, and the files it writes (``output_path``)."""
        return [], [] if self.output_path is None else [self.output_path]

    def _lineage(self, *, with_output: bool) -> OperatorLineage[Any, Any]:
        from airflow.providers.common.compat.openlineage.facet import Dataset
        from airflow.providers.openlineage.extractors import OperatorLineage

        sessions = Dataset(
            namespace=devrev_namespace(self.hook.settings.base_url),
            name=sessions_dataset_name(self._lineage_platform(), str(self.version_key)),
        )
        read, written = self._lineage_files()
        inputs = [sessions, *(output_dataset(path) for path in read)]
        outputs = [output_dataset(path) for path in written] if with_output else []
        return OperatorLineage(inputs=inputs, outputs=outputs)

    def get_openlineage_facets_on_start(self) -> OperatorLineage[Any, Any]:
        """The sessions this task reads and the file it is about to write (called by the OpenLineage provider)."""
        return self._lineage(with_output=True)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """
        The sessions this task read and the file it wrote (called by the OpenLineage provider).

        :param task_instance: The finished task instance; unused: what was read and written is the task's own.
        """
        return self._lineage(with_output=True)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """
        The sessions this task was reading; no output, since a failed run publishes no file.

        :param task_instance: The failed task instance; unused.
        """
        return self._lineage(with_output=False)
