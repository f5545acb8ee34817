"""
A real forward proxy for the tests: ``proxy.py`` (from PyPI) in its own process on 127.0.0.1, stopped by pid.

Every request it forwards is written to a log at once by :mod:`tests.network.proxy_log_plugin`; requests it
refuses for bad credentials are counted from its own log (``ProxyAuthenticationFailed``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0


class ForwardProxy:
    """
    ``proxy.py`` listening on a free loopback port.

    :param basic_auth: ``user:password`` the proxy demands (407 otherwise), or ``None`` for an open proxy.
    """

    def __init__(self, basic_auth: str | None = None) -> None:
        self.basic_auth = basic_auth
        self._dir = Path(tempfile.mkdtemp(prefix="devrev-test-proxy-"))
        self.forwarded_log = self._dir / "forwarded.log"
        self.proxy_log = self._dir / "proxy.log"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> ForwardProxy:
        port_file = self._dir / "port"
        command = [
            sys.executable, "-m", "proxy",
            "--hostname", "127.0.0.1", "--port", "0", "--port-file", str(port_file),
            "--num-acceptors", "1", "--num-workers", "1", "--threaded",
            "--log-level", "INFO", "--log-file", str(self.proxy_log),
            "--plugins", "proxy_log_plugin.LogForwarded",
        ]  # fmt: skip
        if self.basic_auth:
            command += ["--basic-auth", self.basic_auth]
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env["DEVREV_TEST_PROXY_LOG"] = str(self.forwarded_log)
        # Its plugin's folder alone, never the repository root: that would put this tree's provider before the
        # installed one.
        env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])
        self.forwarded_log.touch()
        # Its own process group: proxy.py forks an acceptor process, and stop() ends both.
        # Its output goes to a file, not a pipe nobody reads (a full pipe would block the proxy).
        with (self._dir / "stderr.log").open("wb") as stderr:
            self._process = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not (port_file.exists() and port_file.read_text().strip()):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                output = (self._dir / "stderr.log").read_text(errors="replace")
                raise RuntimeError(f"proxy.py did not start: {output[-2000:]}")
            time.sleep(0.05)  # polling for the port file, with a deadline
        self.port = int(port_file.read_text().split()[0])
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def url(self, credentials: str | None = None) -> str:
        """``http://127.0.0.1:PORT``, with ``user:password@`` when ``credentials`` are given."""
        return f"http://{credentials + '@' if credentials else ''}127.0.0.1:{self.port}"

    def forwarded(self) -> list[str]:
        """What it forwarded, one ``CONNECT host:port`` (or ``GET host:port/path``) per request."""
        return self.forwarded_log.read_text().splitlines()

    def connects(self) -> list[str]:
        """The ``host:port`` of each tunnel it opened."""
        return [line.split(" ", 1)[1] for line in self.forwarded() if line.startswith("CONNECT ")]

    def auth_failures(self) -> int:
        """Requests it refused with 407 (as its own log reports them)."""
        return self.proxy_log.read_text().count("ProxyAuthenticationFailed") if self.proxy_log.exists() else 0

    def clear(self) -> None:
        self.forwarded_log.write_text("")
        if self.proxy_log.exists():
            self.proxy_log.write_text("")
