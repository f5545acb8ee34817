"""``memory://`` for ObjectStoragePath in tests: fsspec's in-memory filesystem, attached as Airflow attaches one."""

from __future__ import annotations


def attach_memory_filesystem() -> None:
    """Make ``ObjectStoragePath("memory://...")`` work in this process (no provider registers ``memory``)."""
    from fsspec.implementations.memory import MemoryFileSystem

    try:
        from airflow.sdk.io import attach
    except ImportError:  # Airflow 2.11
        from airflow.io.store import attach  # type: ignore[no-redef]
    attach(protocol="memory", fs=MemoryFileSystem())
