"""What every Graph connection shares: the renewable credential, request pacing, TLS trust."""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from kiota_http.middleware import BaseMiddleware

from cloudwatcher.providers.pacing import TokenBucket


class RenewableCredential:
    """An azure-identity credential (which caches and refreshes tokens), plus a way to drop its cache.

    A 401 with a token the cache still considers valid (revoked, rotated keys) is answered by
    :meth:`renew`: a fresh credential, hence a fresh token; the old one is closed at the end.
    """

    def __init__(self, factory: Callable[[], AsyncTokenCredential]) -> None:
        self._factory = factory
        self._current = factory()
        self._retired: list[AsyncTokenCredential] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return await self._current.get_token(*scopes, **kwargs)

    def renew(self) -> None:
        self._retired.append(self._current)
        self._current = self._factory()

    async def close(self) -> None:
        for credential in [*self._retired, self._current]:
            await credential.close()
        self._retired.clear()

    async def __aenter__(self) -> RenewableCredential:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


# ----------------------------------------------------------------------------------- pacing


class RequestPacing(BaseMiddleware):
    """One token per HTTP request to Graph, upload and download URLs (token requests use
    azure-identity's own transport, so they are not counted, as ``requests_per_second`` means,
    see docs/configuration.md)."""

    def __init__(self, bucket: TokenBucket) -> None:
        super().__init__()
        self.bucket = bucket

    async def send(self, request: httpx.Request, transport: httpx.AsyncBaseTransport) -> httpx.Response:
        await self.bucket.acquire_async()
        return await super().send(request, transport)


def trust_file_for(ca_bundle: Path | None) -> str | None:
    """The PEM bundle to trust: the target's ``ca_bundle``, else ``SSL_CERT_FILE``, else None
    (the system store). Resolved here, not left to each library, because aiohttp (under
    azure-identity) builds its default TLS context once at import time."""
    if ca_bundle is not None:
        return str(ca_bundle)
    return os.environ.get("SSL_CERT_FILE") or None


def ssl_context(trust_file: str | None) -> ssl.SSLContext:
    """A verifying TLS context: the given bundle, or the system store. Never unverified."""
    return ssl.create_default_context(cafile=trust_file) if trust_file else ssl.create_default_context()
