"""
A proxy.py plugin, loaded by the real proxy.py process that the tests start: it appends one line per request
the proxy is about to forward (``CONNECT host:port`` for a tunnel, ``GET host:port/path`` for plain HTTP) to
the file named by ``DEVREV_TEST_PROXY_LOG``, at once, so that a test can read what the proxy handled while
the client still holds the connection (proxy.py's own access log is written only when a connection closes).

Runs after proxy.py's basic-auth check: a request refused with 407 is not forwarded and not logged here.
"""

from __future__ import annotations

import os
from typing import Any

from proxy.http.proxy import HttpProxyBasePlugin


class LogForwarded(HttpProxyBasePlugin):
    def before_upstream_connection(self, request: Any) -> Any:
        method = request.method.decode() if request.method else "?"
        host = request.host.decode() if request.host else "?"
        target = f"{host}:{request.port}"
        if method != "CONNECT":
            target += request.path.decode() if request.path else ""
        with open(os.environ["DEVREV_TEST_PROXY_LOG"], "a", encoding="utf-8") as log:
            log.write(f"{method} {target}\n")
        return request
