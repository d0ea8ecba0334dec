"""Graph and token-endpoint answers mapped onto the daemon's retry classes (docs/providers.md, Graph)."""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import ClientAuthenticationError
from kiota_abstractions.api_error import APIError
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from cloudwatcher.providers.base import (
    PermanentError,
    ProviderError,
    QuotaExceededError,
    TransientError,
    parse_retry_after,
)

#: The SDK's error mapping: every status parses as an OData error body.
ERROR_MAPPING: dict[str, Any] = {"XXX": ODataError}


class QuickXorMismatchError(TransientError):
    """SharePoint reported a quickXorHash that differs from the bytes sent."""

    reason = "server_modified"


def classify(status: int, code: str, message: str, headers: Any = None) -> ProviderError:
    """Map a Graph answer onto the daemon's retry classes (docs/providers.md, Microsoft Graph, Errors)."""
    text = f"SharePoint {status} {code}: {message}".strip()
    if status == 507 or code in ("insufficientStorage", "quotaLimitReached"):
        return QuotaExceededError(text)
    if status == 429 or status >= 500 or status in (404, 409, 416, 408):
        return TransientError(
            text, retry_after=parse_retry_after(headers.get("Retry-After") if headers is not None else None)
        )
    if status == 401:
        return PermanentError(f"{text} (refused again after a token refresh)")
    return PermanentError(text)


def from_api_error(exc: APIError) -> ProviderError:
    status = exc.response_status_code or 0
    code, message = "", str(exc)
    if isinstance(exc, ODataError) and exc.error is not None:
        code, message = exc.error.code or "", exc.error.message or ""
    return classify(status, code, message, exc.response_headers)


def from_token_error(exc: ClientAuthenticationError) -> ProviderError:
    """The token endpoint refused: bad credentials are permanent, its outages are not.

    azure-identity's message carries the AADSTS code and description, never the secret.
    """
    response: Any = exc.response
    status: int = (response.status_code or 0) if response is not None else 0
    message = (exc.message or "").splitlines()[0] if exc.message else type(exc).__name__
    if status == 429 or status >= 500:
        headers = response.headers if response is not None else None
        return TransientError(
            f"token endpoint {status}: {message}",
            retry_after=parse_retry_after(headers.get("Retry-After") if headers is not None else None),
        )
    return PermanentError(f"token request refused ({status or 'no answer'}): {message}")


def status_of(exc: BaseException | None) -> int | None:
    return exc.response_status_code if isinstance(exc, APIError) else None
