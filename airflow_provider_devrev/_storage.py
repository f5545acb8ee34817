"""Where exports go: any path or URL Airflow's ``ObjectStoragePath`` accepts, published all at once."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from airflow_provider_devrev._leftovers import (
    LOCAL_PROTOCOLS,
    abort_unfinished_uploads,
    create_locked,
    partial_name,
    sweep_partials,
)

log = logging.getLogger(__name__)

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
    the target, and first clears what a killed export of the same target left: its partial files beside a
    local target, its unfinished multipart uploads of an S3 key (see :mod:`~airflow_provider_devrev._leftovers`).

    :param output_path: A path or URL, or an ``ObjectStoragePath``.
    :param mode: ``"w"`` (text) or ``"wb"`` (bytes).
    :param open_kwargs: Passed to ``open`` (``encoding="utf-8"`` for text).
    """
    target = storage_path(output_path)
    local = target.protocol in LOCAL_PROTOCOLS
    if local:
        target.parent.mkdir(parents=True, exist_ok=True)
    if target.protocol in TRANSACTIONAL_PROTOCOLS:
        _clear(target, abort_unfinished_uploads, "aborted %d unfinished multipart upload(s) of %s")
        with target.fs.transaction, target.open(mode, **open_kwargs) as stream:
            yield stream, str(target)
        return
    _clear(target, sweep_partials, "removed %d partial file(s) a killed export of %s left")
    partial, lock = _new_partial(target, local)
    try:
        with partial.open(mode, **open_kwargs) as stream:
            yield stream, str(target)
        partial.rename(target)
    finally:
        if partial.exists():
            partial.unlink()
        if lock is not None:
            os.close(lock)


def _new_partial(target: Any, local: bool) -> tuple[Any, int | None]:
    """The partial file to write, and on a local disk the descriptor holding its lock."""
    for _ in range(3):
        partial = target.with_name(partial_name(target.name))
        if not local:
            return partial, None
        try:
            return partial, create_locked(partial.path)
        except FileExistsError:  # a concurrent sweep took it between creating and locking: a new name
            continue
    raise RuntimeError(f"could not create a partial file beside {target}")


def _clear(target: Any, clear: Callable[[Any], list[str]], message: str) -> None:
    # Clearing debris is housekeeping: a store that refuses it (no s3:ListBucketMultipartUploads permission,
    # a read-only folder) must not fail the export itself.
    try:
        cleared = clear(target)
    except Exception as error:
        log.warning("Could not clear what earlier exports of %s left: %s", target, error)
        return
    if cleared:
        log.info(message, len(cleared), target)
