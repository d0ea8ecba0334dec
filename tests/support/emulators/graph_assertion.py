"""The Microsoft identity platform's certificate credential, as the Graph emulator checks it.

An app registration holds a certificate's public part; the client signs a JWT ("client
assertion") with the private key and names the certificate by thumbprint in the header: ``x5t``
(base64url SHA-1, with RS256) or ``x5t#S256`` (base64url SHA-256, with PS256). The claims are
``aud`` (the token endpoint), ``iss`` = ``sub`` = the client id, ``jti``, ``nbf``, ``exp``
(Microsoft's "Certificate credentials" page). Everything below is checked with ``cryptography``.
"""

from __future__ import annotations

import base64
import datetime
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class AssertionRefused(Exception):
    """The assertion is not acceptable; ``str()`` is the AADSTS description."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    text = text.rstrip("=")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class AppCertificate:
    """A self-signed certificate registered on the emulated app, and its PEM (key + certificate)."""

    certificate: x509.Certificate
    pem_with_key: bytes

    @classmethod
    def generate(cls, common_name: str = "cloudwatcher-test-app") -> AppCertificate:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256())
        )
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ) + certificate.public_bytes(serialization.Encoding.PEM)
        return cls(certificate, pem)

    def write(self, path: Path) -> Path:
        path.write_bytes(self.pem_with_key)
        path.chmod(0o600)
        return path

    def thumbprints(self) -> dict[str, str]:
        """Header name → the thumbprint value Microsoft accepts there."""
        return {
            "x5t": _b64url(self.certificate.fingerprint(hashes.SHA1())),
            "x5t#S256": _b64url(self.certificate.fingerprint(hashes.SHA256())),
        }


def verify_client_assertion(
    assertion: str, *, registered: list[AppCertificate], client_id: str, token_url: str
) -> dict[str, Any]:
    """The assertion's claims when a registered certificate signed it for this client and endpoint."""
    try:
        header_b64, claims_b64, signature_b64 = assertion.split(".")
        header = json.loads(_b64url_decode(header_b64))
        claims = json.loads(_b64url_decode(claims_b64))
        signature = _b64url_decode(signature_b64)
    except (ValueError, TypeError) as exc:
        raise AssertionRefused("AADSTS50027: JWT token is invalid or malformed.") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise AssertionRefused("AADSTS50027: JWT token is invalid or malformed.")
    algorithm = header.get("alg")
    thumbprint_header = {"RS256": "x5t", "PS256": "x5t#S256"}.get(str(algorithm))
    if thumbprint_header is None:
        raise AssertionRefused(
            f"AADSTS5002738: Invalid JWT token. '{algorithm}' is not a supported signature algorithm."
        )
    certificate = next(
        (
            c
            for c in registered
            if c.thumbprints()[thumbprint_header] == str(header.get(thumbprint_header, "")).rstrip("=")
        ),
        None,
    )
    if certificate is None:
        raise AssertionRefused(
            "AADSTS700027: The certificate with identifier used to sign the client assertion is not registered "
            "on application."
        )
    public_key = certificate.certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    scheme = (
        padding.PKCS1v15()
        if algorithm == "RS256"
        else padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    )
    try:
        public_key.verify(signature, f"{header_b64}.{claims_b64}".encode(), scheme, hashes.SHA256())
    except Exception as exc:
        raise AssertionRefused("AADSTS700027: Client assertion failed signature validation.") from exc
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise AssertionRefused(
            "AADSTS700021: Client assertion application identifier doesn't match 'client_id' parameter."
        )
    if claims.get("aud") != token_url:
        raise AssertionRefused("AADSTS700212: Client assertion audience claim does not match the token endpoint.")
    now = time.time()
    try:
        not_before, expires = float(claims.get("nbf", 0)), float(claims["exp"])
    except (KeyError, TypeError, ValueError) as exc:
        raise AssertionRefused("AADSTS50027: JWT token is invalid or malformed.") from exc
    if expires < now or not_before > now + 300:
        raise AssertionRefused("AADSTS700024: Client assertion is not within its valid time range.")
    if not claims.get("jti"):
        raise AssertionRefused("AADSTS50027: JWT token is invalid or malformed (no jti).")
    return claims
