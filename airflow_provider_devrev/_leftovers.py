"""
What a killed export leaves, and how the next export of the same target clears it.

A SIGKILL runs no cleanup: beside a local target it leaves the ``.<name>.<hex>.partial`` file it was writing;
on S3 the multipart upload it had started, stored (and billed) until completed or aborted. The next export of
the same target removes both, and nothing else: never another target's, never one a live writer is using.

On a local disk a writer holds an exclusive ``flock`` on its partial file from creating it until it is gone.
The kernel drops the lock when the process dies, however it dies, so a partial file whose lock can be taken
belongs to nobody. A concurrent writer of the same target (a second run given the same path while the first
is still writing) keeps its file; whichever of the two finishes last is the one published, whole.

S3 has nothing to tell a live upload from an abandoned one, so every unfinished upload of the key is aborted.
A concurrent writer of the same key then fails when it completes (``NoSuchUpload``) and publishes nothing: the
object holds one whole export either way. Airflow never runs two tries of one task instance at once, so such a
writer is a second run sharing the path, or a zombie try Airflow already gave up on.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from typing import Any

try:
    import fcntl
except ImportError:  # Windows, where Airflow does not run its workers: partial files are then never swept
    fcntl = None  # type: ignore[assignment]

LOCAL_PROTOCOLS = frozenset({"", "file", "local"})


def partial_name(target_name: str) -> str:
    """A fresh name for the file written beside ``target_name`` until it is complete.

    :param target_name: The target's file name.
    """
    return f".{target_name}.{uuid.uuid4().hex}.partial"


def _pattern(target_name: str) -> re.Pattern[str]:
    # Exactly 32 hex digits: the partial file of "day.jsonl.x" is not one of "day.jsonl".
    return re.compile(rf"\.{re.escape(target_name)}\.[0-9a-f]{{32}}\.partial")


def create_locked(path: str) -> int:
    """
    Create ``path`` (which must not exist) and lock it for this writer; return the descriptor that holds the
    lock (close it once the file is renamed or deleted). Locking happens after creating, so a sweep may take
    the lock first and delete the file: the writer sees its file unlinked and reports it, and the caller
    starts over with a new name.

    :param path: A local path, of a name from :func:`partial_name`.
    :raises FileExistsError: If the sweep removed the file before it was locked.
    """
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
    if fcntl is None:
        return fd
    fcntl.flock(fd, fcntl.LOCK_EX)
    if os.fstat(fd).st_nlink == 0:
        os.close(fd)
        raise FileExistsError(path)
    return fd


def sweep_partials(target: Any) -> list[str]:
    """
    Delete the partial files beside a local ``target`` that no live writer holds; return their names.

    :param target: An ``ObjectStoragePath`` on a local disk; other stores are left alone (see the module).
    """
    if target.protocol not in LOCAL_PROTOCOLS or fcntl is None:
        return []
    folder = os.path.dirname(target.path)
    pattern = _pattern(target.name)
    try:
        names = [name for name in os.listdir(folder) if pattern.fullmatch(name)]
    except FileNotFoundError:
        return []
    removed = []
    for name in names:
        path = os.path.join(folder, name)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # its writer finished meanwhile
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a live writer
            os.close(fd)
            continue
        try:
            # Still the file we locked (not renamed into place and replaced by another of the same name).
            if os.fstat(fd).st_nlink and os.path.samestat(os.fstat(fd), os.stat(path)):
                os.unlink(path)
                removed.append(name)
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)
    return removed


def abort_unfinished_uploads(target: Any) -> list[str]:
    """
    Abort every multipart upload of ``target``'s key on S3 that was started and never completed or aborted;
    return their upload ids.

    :param target: An ``ObjectStoragePath`` on S3 (s3fs).
    """
    fs = target.fs
    bucket, key, _ = fs.split_path(target.path)
    aborted: list[str] = []
    markers: dict[str, str] = {}
    while True:
        # Prefix narrows the listing to the key and the keys it begins; the exact key is picked below.
        page = fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=key, **markers)
        for upload in page.get("Uploads", []):
            if upload["Key"] == key:
                with contextlib.suppress(FileNotFoundError):  # completed or aborted meanwhile
                    fs.call_s3("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload["UploadId"])
                aborted.append(upload["UploadId"])
        if not page.get("IsTruncated"):
            return aborted
        markers = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}
