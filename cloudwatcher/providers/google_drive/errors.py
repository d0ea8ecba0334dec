"""Drive's answers (status and ``errors[0].reason``) mapped onto the daemon's retry classes.

https://developers.google.com/drive/api/guides/handle-errors
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import ssl
import zoneinfo

import google.auth.exceptions
import httplib2
from googleapiclient.errors import HttpError

from cloudwatcher.providers.base import (
    DailyCapError,
    PermanentError,
    ProviderError,
    TransientError,
    parse_retry_after,
)
from cloudwatcher.providers.errors import to_provider_error

_RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded"}
#: The 750 GB/day upload cap also arrives as 403 userRateLimitExceeded. What tells it from the
#: per-minute limit is the message: exactly this for the daily cap, "User Rate Limit Exceeded"
#: followed by more text for the per-minute one (rclone's --drive-stop-on-upload-limit reads
#: the same signal: https://rclone.org/drive/#drive-stop-on-upload-limit).
DAILY_CAP_MESSAGE = "User rate limit exceeded."
#: A full drive: storage quota, or a shared drive's item-count limit.
_FULL_REASONS = {"storageQuotaExceeded", "teamDriveFileLimitExceeded"}
#: The daily caps. Plain "userRateLimitExceeded" is the per-minute quota, not the 750 GB cap.
_DAILY_CAP_REASONS = {"dailyLimitExceeded", "uploadLimitExceeded", "dailyLimitExceededUnreg"}
NETWORK_ERRORS = (TimeoutError, ConnectionError, http.client.HTTPException, httplib2.HttpLib2Error)


def seconds_until_daily_reset() -> float:
    """Drive's per-day quotas reset at midnight Pacific time; the earliest the cap can be gone."""
    now = dt.datetime.now(zoneinfo.ZoneInfo("America/Los_Angeles"))
    midnight = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - now).total_seconds() + 60


class UserRateLimitError(TransientError):
    """403 userRateLimitExceeded in the per-minute shape. The per-minute quota clears within its
    minute; when it does not, the daily cap is the likelier cause (see :mod:`.upload_cap`)."""


def translate_http_error(exc: HttpError) -> ProviderError:
    """Map Drive's status and ``errors[0].reason`` to the daemon's retry classes (docs/providers.md, Drive)."""
    status = exc.resp.status
    reason, message, detail = "", "", ""
    try:
        error = json.loads(exc.content)["error"]
        message = str(error.get("message", ""))
        first = (error.get("errors") or [{}])[0]
        reason = str(first.get("reason", ""))
        detail = str(first.get("message", message))
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        message = str(exc.content[:200] if isinstance(exc.content, bytes) else exc.content)
    text = f"Google Drive answered {status} {reason or 'error'}: {message}".rstrip(": ")
    retry_after = parse_retry_after(exc.resp.get("retry-after"))
    lowered = message.lower()
    daily_cap = (
        reason in _DAILY_CAP_REASONS
        or (reason in _RATE_REASONS and detail == DAILY_CAP_MESSAGE)
        or "upload limit" in lowered
        or "daily limit" in lowered
    )
    if status == 403 and daily_cap and reason not in _FULL_REASONS:  # a full drive is quota, below
        return DailyCapError(
            f"{text} (Drive's daily upload limit)", retry_after=retry_after or seconds_until_daily_reset()
        )
    if status == 401:
        text = f"{text} (the access token was refused)"
    return to_provider_error(
        text,
        status,
        retry_after=retry_after,
        quota=reason in _FULL_REASONS,
        # A 403 is Drive's throttling answer too; its reason says which.
        retryable=True if status == 403 and reason in _RATE_REASONS else None,
        transient=UserRateLimitError if status == 403 and reason == "userRateLimitExceeded" else TransientError,
    )


def translate_error(exc: BaseException, token_uri: str = "the token endpoint") -> ProviderError:
    """Any exception from the SDK, the transport or the token refresh → a ProviderError."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, HttpError):
        return translate_http_error(exc)
    if isinstance(exc, google.auth.exceptions.RefreshError):
        text = f"token request to {token_uri} failed: {exc}"
        return TransientError(text) if getattr(exc, "retryable", False) else PermanentError(text)
    if isinstance(exc, google.auth.exceptions.TransportError):
        return TransientError(f"cannot reach {token_uri}: {exc}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return PermanentError(f"TLS certificate not trusted (set ca_bundle?): {exc}")
    if isinstance(exc, (*NETWORK_ERRORS, OSError)):
        return TransientError(f"network error talking to Google Drive: {exc!r}")
    return TransientError(f"unexpected {type(exc).__name__} from the Drive client: {exc}")
