"""What every Graph connection shares: the renewable credential and request pacing."""

from __future__ import annotations

from collections.abc import Callable
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
