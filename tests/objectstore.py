"""
Object stores for tests: ``memory://`` (fsspec's in-memory filesystem, attached as Airflow attaches one), and a
real S3-compatible server on loopback.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def attach_memory_filesystem() -> None:
    """Make ``ObjectStoragePath("memory://...")`` work in this process (no provider registers ``memory``)."""
    from fsspec.implementations.memory import MemoryFileSystem

    try:
        from airflow.sdk.io import attach
    except ImportError:  # Airflow 2.11
        from airflow.io.store import attach  # type: ignore[no-redef]
    attach(protocol="memory", fs=MemoryFileSystem())


#: The bucket of :func:`s3_server`.
BUCKET = "devrev-exports"


@contextmanager
def s3_server() -> Iterator[Any]:
    """
    A real S3-compatible server (moto's) answering over HTTP on 127.0.0.1, with :data:`BUCKET` created; yields a
    boto3 client of it. ``aws_connection_json(client)`` is the Airflow connection that reaches it, so
    ``s3://aws_default@devrev-exports/...`` goes through the Amazon provider and s3fs as in production.
    """
    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()  # returns once it listens
    try:
        client = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=BUCKET)
        yield client
    finally:
        server.stop()


def aws_connection_json(client: Any) -> str:
    """The ``aws_default`` connection (for ``AIRFLOW_CONN_AWS_DEFAULT``) of the server ``client`` talks to."""
    extra = {"endpoint_url": client.meta.endpoint_url, "region_name": "us-east-1"}
    return json.dumps({"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra})


def pending_uploads(client: Any) -> list[str]:
    """Keys of :data:`BUCKET`'s multipart uploads started and neither completed nor aborted."""
    return [upload["Key"] for upload in client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])]
