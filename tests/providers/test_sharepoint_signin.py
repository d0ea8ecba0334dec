"""SharePoint signing in with a certificate: azure-identity's client assertion against the Graph emulator.

The emulator checks what the Microsoft identity platform checks (thumbprint header, signature by
the registered certificate, ``iss``/``sub``/``aud``/``exp``); the tampered assertions below are
the hostile input that must be refused.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from cloudwatcher.config import SharePointTarget
from cloudwatcher.providers import PermanentError
from cloudwatcher.providers.sharepoint import SharePointProvider
from tests.support.emulators.fixtures import sharepoint_settings
from tests.support.emulators.graph import GraphEmulator
from tests.support.emulators.graph_assertion import JWT_BEARER_ASSERTION, AppCertificate
from tests.support.upload_jobs import make_job, no_state


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[GraphEmulator]:
    with GraphEmulator(tmp_path) as running:
        yield running


def certificate_target(emulator: GraphEmulator, pem: Path) -> SharePointTarget:
    settings = sharepoint_settings(emulator, client_certificate_file=str(pem))
    del settings["client_secret"]
    return SharePointTarget.model_validate(settings)


async def test_a_certificate_signs_in_and_uploads(emulator: GraphEmulator, tmp_path: Path) -> None:
    provider = SharePointProvider(certificate_target(emulator, emulator.certificate_pem), concurrency=2)
    try:
        await provider.upload(make_job(tmp_path, "dev1/requests/signed.txt", b"by certificate"), no_state)
    finally:
        await provider.close()
    assert emulator.file_bytes("CloudWatcher/dev1/requests/signed.txt") == b"by certificate"
    assert [claims["sub"] for claims in emulator.assertions] == [emulator.client_id]


async def test_a_certificate_the_app_does_not_know_is_refused_for_good(emulator: GraphEmulator, tmp_path: Path) -> None:
    stranger = AppCertificate.generate("someone else").write(tmp_path / "stranger.pem")
    provider = SharePointProvider(certificate_target(emulator, stranger), concurrency=2)
    try:
        with pytest.raises(PermanentError, match="AADSTS700027"):
            await provider.upload(make_job(tmp_path, "dev1/requests/nope.txt", b"x"), no_state)
    finally:
        await provider.close()
    assert emulator.file_bytes("CloudWatcher/dev1/requests/nope.txt") is None
    assert emulator.assertions == []


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_assertion(key: rsa.RSAPrivateKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def tampered(emulator: GraphEmulator, token_url: str, how: str) -> str:
    """An RS256 assertion for the emulator's app, spoiled in one way."""
    key = serialization.load_pem_private_key(emulator.certificate.pem_with_key, None)
    assert isinstance(key, rsa.RSAPrivateKey)
    now = int(time.time())
    header: dict[str, Any] = {"typ": "JWT", "alg": "RS256", "x5t": emulator.certificate.thumbprints()["x5t"]}
    claims: dict[str, Any] = {
        "aud": token_url,
        "iss": emulator.client_id,
        "sub": emulator.client_id,
        "jti": str(uuid.uuid4()),
        "nbf": now,
        "exp": now + 600,
    }
    if how == "valid":
        return signed_assertion(key, header, claims)
    if how == "other key":
        return signed_assertion(rsa.generate_private_key(public_exponent=65537, key_size=2048), header, claims)
    if how == "claims changed after signing":
        head, _, signature = signed_assertion(key, header, claims).split(".")
        return f"{head}.{b64url(json.dumps({**claims, 'sub': 'intruder'}).encode())}.{signature}"
    if how == "wrong thumbprint":
        return signed_assertion(key, {**header, "x5t": b64url(b"\x00" * 20)}, claims)
    if how == "alg none":
        return signed_assertion(key, {**header, "alg": "none"}, claims)
    if how == "other audience":
        return signed_assertion(key, header, {**claims, "aud": "https://login.example.com/token"})
    if how == "other client":
        return signed_assertion(key, header, {**claims, "iss": "someone", "sub": "someone"})
    if how == "expired":
        return signed_assertion(key, header, {**claims, "nbf": now - 7200, "exp": now - 3600})
    if how == "no jti":
        return signed_assertion(key, header, {k: v for k, v in claims.items() if k != "jti"})
    if how == "not a jwt":
        return "a.b"
    return "\x00." + "ÿ" * 40 + ".%%%"


@pytest.mark.parametrize(
    "how",
    [
        "other key",
        "claims changed after signing",
        "wrong thumbprint",
        "alg none",
        "other audience",
        "other client",
        "expired",
        "no jti",
        "not a jwt",
        "binary junk",
    ],
)
def test_the_emulator_refuses_a_spoiled_client_assertion(emulator: GraphEmulator, how: str) -> None:
    token_url = f"{emulator.authority_url}/{emulator.tenant_id}/oauth2/v2.0/token"

    def ask(assertion: str) -> httpx.Response:
        with httpx.Client(verify=str(emulator.ca_pem)) as client:
            return client.post(
                token_url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": emulator.client_id,
                    "client_assertion_type": JWT_BEARER_ASSERTION,
                    "client_assertion": assertion,
                    "scope": "https://graph.microsoft.com/.default",
                },
            )

    assert ask(tampered(emulator, token_url, "valid")).status_code == 200  # the same request, unspoiled
    answer = ask(tampered(emulator, token_url, how))
    assert answer.status_code in (400, 401), answer.text
    assert answer.json()["error"] in ("invalid_client", "invalid_request")
    assert len(emulator.assertions) == 1
