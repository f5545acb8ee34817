"""Where exports go: any path or URL Airflow's ``ObjectStoragePath`` accepts, published all at once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

#: Protocols whose files write nothing visible until committed and can be discarded (s3fs's deferred
#: multipart upload): exports there are written in place inside the filesystem's transaction.
TRANSACTIONAL_PROTOCOLS = frozenset({"s3", "s3a"})


def storage_path(output_path: Any) -> Any:
    """
    ``output_path`` as an ``ObjectStoragePath``: an absolute local path, ``file://...``, or any object-store URL
    Airflow has a provider for (``s3://aws_default@bucket/key``); an ``ObjectStoragePath`` is taken as it is.
    """
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    if isinstance(output_path, ObjectStoragePath):
        return output_path
    if isinstance(output_path, str) and output_path.startswith("/"):
        output_path = "file://" + output_path
    return ObjectStoragePath(str(output_path))


@contextmanager
def published_atomically(output_path: Any, mode: str = "w", **open_kwargs: Any) -> Iterator[tuple[IO[Any], str]]:
    """
    Open a stream whose content appears at ``output_path`` only if the block completes.

    Yields ``(stream, target)``. On S3 the stream writes the target itself inside the filesystem's transaction:
    its multipart upload completes only when the block does and is aborted on an exception, so there is one
    upload, no temporary object, and the lineage Airflow records is the final path. Elsewhere the stream writes
    beside the target, and on a clean exit the file is moved into place (an atomic rename on a local disk, a copy
    on other stores); on an exception it is deleted. Either way a reader never sees half a file and a failed run
    leaves none: writing to the target itself outside a transaction would publish half an export when the source
    fails, since closing an object-store file completes its upload whatever happened before. A rerun overwrites
    the target.

    :param output_path: A path or URL, or an ``ObjectStoragePath``.
    :param mode: ``"w"`` (text) or ``"wb"`` (bytes).
    :param open_kwargs: Passed to ``open`` (``encoding="utf-8"`` for text).
    """
    target = storage_path(output_path)
    if target.protocol in ("", "file", "local"):
        target.parent.mkdir(parents=True, exist_ok=True)
    if target.protocol in TRANSACTIONAL_PROTOCOLS:
        with target.fs.transaction, target.open(mode, **open_kwargs) as stream:
            yield stream, str(target)
        return
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
    try:
        with partial.open(mode, **open_kwargs) as stream:
            yield stream, str(target)
        partial.rename(target)
    finally:
        if partial.exists():
            partial.unlink()
