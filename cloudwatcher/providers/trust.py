"""What a target's TLS connections trust, decided once for every provider (docs/configuration.md, ``ca_bundle``).

The rule: the target's ``ca_bundle``, else ``$SSL_CERT_FILE``, else the system store; never an
unverified connection. Each SDK takes trust in its own shape (httpx an ``ssl.SSLContext``,
azure-identity a path or ``True``, httplib2 and botocore a file, which, left unset, would be
their own bundled list instead of the system store), so :class:`Trust` offers the one decision
in each shape, and the providers only pick theirs.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

#: Where distributions keep the system store as one file, for libraries that take only a file.
_SYSTEM_CA_FILES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem")


@dataclass(frozen=True)
class Trust:
    """A target's trust: its own bundle, the environment's, or the system store."""

    #: The target's ``ca_bundle``, when it names one.
    configured: str | None
    #: The PEM file to trust (``configured``, else ``$SSL_CERT_FILE``); None means the system store.
    bundle: str | None

    def bundle_file(self) -> str | None:
        """:attr:`bundle`, else the system store's file, for libraries that take only a file."""
        if self.bundle is not None:
            return self.bundle
        paths = ssl.get_default_verify_paths()
        for candidate in (paths.cafile, paths.openssl_cafile, *_SYSTEM_CA_FILES):
            if candidate and os.path.isfile(candidate):
                return candidate
        return None

    def ssl_context(self) -> ssl.SSLContext:
        """A verifying TLS context of :attr:`bundle`, or of the system store."""
        return ssl.create_default_context(cafile=self.bundle) if self.bundle else ssl.create_default_context()


def target_trust(ca_bundle: Path | None, *, target: str | None = None) -> Trust:
    """The trust of a target whose ``ca_bundle`` is given; one that is not a file is a ValueError (exit 2).

    Resolved when the provider is built, not left to each library: aiohttp (under
    azure-identity) builds its default TLS context once, at import time.
    """
    configured = str(ca_bundle.expanduser()) if ca_bundle is not None else None
    if configured is not None and not os.path.isfile(configured):
        where = f"target {target!r}: " if target else ""
        raise ValueError(f"{where}ca_bundle {configured} is not a file")
    return Trust(configured=configured, bundle=configured or os.environ.get("SSL_CERT_FILE") or None)
