"""Graph and token-endpoint answers mapped onto the daemon's retry classes (docs/providers.md, Graph)."""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import ClientAuthenticationError
from kiota_abstractions.api_error import APIError
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from cloudwatcher.providers.base import PermanentError, ProviderError, TransientError
from cloudwatcher.providers.errors import to_provider_error

#: The SDK's error mapping: every status parses as an OData error body.
ERROR_MAPPING: dict[str, Any] = {"XXX": ODataError}


class QuickXorMismatchError(TransientError):
    """SharePoint reported a quickXorHash that differs from the bytes sent."""

    reason = "server_modified"


#: Graph's quirks: a full drive, and answers that are worth another attempt on SharePoint
#: (a 404 or 409 of a folder being created meanwhile, a 416 of a session that moved on).
_QUOTA_CODES = frozenset({"insufficientStorage", "quotaLimitReached"})
_RETRYABLE_STATUSES = frozenset({404, 409, 416})


def classify(status: int, code: str, message: str, headers: Any = None) -> ProviderError:
    """Map a Graph answer onto the daemon's retry classes (docs/providers.md, Microsoft Graph, Errors)."""
    text = f"SharePoint {status} {code}: {message}".strip()
    if status == 401:
        text = f"{text} (refused again after a token refresh)"
    return to_provider_error(
        text,
        status,
        retry_after=headers.get("Retry-After") if headers is not None else None,
        quota=status == 507 or code in _QUOTA_CODES,
        retryable=True if status in _RETRYABLE_STATUSES else None,
    )


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
        retry_after = headers.get("Retry-After") if headers is not None else None
        return to_provider_error(f"token endpoint {status}: {message}", status, retry_after=retry_after)
    return PermanentError(f"token request refused ({status or 'no answer'}): {message}")


def status_of(exc: BaseException | None) -> int | None:
    return exc.response_status_code if isinstance(exc, APIError) else None
