"""Apache Airflow provider for DevRev's observability (session replay) API."""

from __future__ import annotations

__version__ = "0.1.0"
