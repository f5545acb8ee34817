"""Throw-away TLS for the simulator: a fresh CA and a server certificate for 127.0.0.1 and localhost.

Built with ``trustme`` (install the provider's ``testing`` extra), imported only when a simulator is asked
for TLS. The CA is written to a PEM file that a client can trust (the connection's ``ca_bundle``,
``REQUESTS_CA_BUNDLE`` or ``SSL_CERT_FILE``); the file is removed when the :class:`ThrowawayTLS` is
garbage-collected or :meth:`ThrowawayTLS.cleanup` is called.

Besides a valid certificate, two broken ones for failure tests: ``wrong_host`` (issued to
``wrong-host.invalid``, so a client connecting to 127.0.0.1 must refuse it) and ``expired`` (valid for the
right names, but its validity ended a day ago).
"""

from __future__ import annotations

import datetime
import shutil
import ssl
import tempfile
import weakref
from pathlib import Path

#: The certificates the simulator can present.
CERTIFICATES = ("valid", "wrong_host", "expired")


class ThrowawayTLS:
    """
    A new CA and one server certificate signed by it.

    :param certificate: ``valid``, ``wrong_host`` or ``expired``.
    :raises ValueError: an unknown ``certificate``.
    :raises ImportError: ``trustme`` is not installed (it comes with the ``testing`` extra).
    """

    def __init__(self, certificate: str = "valid") -> None:
        if certificate not in CERTIFICATES:
            raise ValueError(f"tls_certificate must be one of {', '.join(CERTIFICATES)}, not {certificate!r}")
        try:
            import trustme
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError(
                "DevRevSimulator(tls=True) needs trustme: pip install 'airflow-provider-devrev[testing]'"
            ) from err
        self.certificate = certificate
        ca = trustme.CA(organization_name="DevRev simulator throw-away CA")
        names = ["wrong-host.invalid"] if certificate == "wrong_host" else ["127.0.0.1", "localhost", "::1"]
        if certificate == "expired":
            now = datetime.datetime.now(datetime.UTC)
            server = ca.issue_cert(
                *names, not_before=now - datetime.timedelta(days=30), not_after=now - datetime.timedelta(days=1)
            )
        else:
            server = ca.issue_cert(*names)
        self._dir = Path(tempfile.mkdtemp(prefix="devrev-simulator-tls-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._dir, True)
        self.ca_file = str(self._dir / "ca.pem")
        ca.cert_pem.write_to_path(self.ca_file)
        self.server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.configure_cert(self.server_context)

    def cleanup(self) -> None:
        """Remove the CA file now."""
        self._cleanup()
