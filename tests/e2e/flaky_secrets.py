"""
A secrets backend for the end-to-end tests, configured as a deployment configures one (``[secrets] backend`` and
``backend_kwargs``): it holds connections in a JSON file, and its first lookups fail as a store that is
restarting fails (Vault answering 503, say). Each lookup is appended to a log file, so a test can count them
whichever process made them, and whether Airflow builds one backend per lookup (2.11, 3.0) or keeps one (3.3).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

try:
    from airflow.secrets import BaseSecretsBackend
except ImportError:  # pragma: no cover - Airflow 3 without the legacy name
    from airflow.secrets.base_secrets import BaseSecretsBackend  # type: ignore[no-redef]

FAILED = "failed"
SERVED = "served"


class FlakySecretsBackend(BaseSecretsBackend):
    """
    :param connections: A JSON file mapping connection ids to connections in Airflow's JSON form.
    :param lookups: The log file: one line per lookup, ``<conn_id> failed`` or ``<conn_id> served``.
    :param failures: How many lookups fail, from the first, before any is served.
    """

    def __init__(self, connections: str, lookups: str, failures: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.connections = Path(connections)
        self.lookups = Path(lookups)
        self.failures = failures

    def get_conn_value(self, conn_id: str, *args: Any, **kwargs: Any) -> str | None:
        stored = json.loads(self.connections.read_text(encoding="utf-8"))
        if conn_id not in stored:
            return None
        made = len(self.lookups.read_text(encoding="utf-8").splitlines()) if self.lookups.exists() else 0
        failing = made < self.failures
        with self.lookups.open("a", encoding="utf-8") as log:
            log.write(f"{conn_id} {FAILED if failing else SERVED}\n")
        if failing:
            raise ConnectionError("the secrets store answered 503 Service Unavailable")
        return json.dumps(stored[conn_id])


def lookups(path: Path) -> list[str]:
    """The outcomes logged so far, in order."""
    return [line.split()[1] for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
