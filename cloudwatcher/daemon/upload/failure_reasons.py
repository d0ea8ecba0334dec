"""Why an upload attempt failed, as one of a fixed set of reasons for the failure metric.

``cloudwatcher_uploads_failed_total{target,reason}`` needs a reason an operator can alert on
(rate limited vs. a bad credential vs. a full quota), from a closed set so that no error text
creates a new series. Providers raise :class:`TransientError` / :class:`PermanentError`
subclasses with messages that carry the provider's own status and code; this module reads the
exception class first, then the ``reason`` a provider may set on its error, and only then
the status and code in the message, which every provider's error mapping puts there.
"""

from __future__ import annotations

import re
from typing import Final, Literal, get_args

from cloudwatcher.providers.base import (
    DailyCapError,
    FileChangedError,
    ProviderError,
    QuotaExceededError,
    TransientError,
)

FailureReason = Literal[
    "rate_limited", "server_error", "network", "auth", "quota", "changed", "server_modified", "too_long", "other"
]
FAILURE_REASONS: Final[frozenset[str]] = frozenset(get_args(FailureReason))

# Status codes and provider codes as the error mappings quote them: "SharePoint 429 ...",
# "Google Drive answered 503 ...", "S3 ...: SlowDown (HTTP 503)", "token endpoint 401: ...".
_RATE_LIMITED = re.compile(
    r"\b429\b|throttl|rate ?limit|userRateLimitExceeded|TooManyRequests|SlowDown|RequestLimitExceeded", re.I
)
_TOO_LONG = re.compile(r"too long|KeyTooLong|pathTooLong|path length|ENAMETOOLONG|name.{0,20}exceeds", re.I)
_AUTH = re.compile(
    r"\b40[13]\b|AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|ExpiredToken|credential|"
    r"token (request|endpoint)|unauthori[sz]ed|forbidden|permission denied|TLS",
    re.I,
)
_SERVER_ERROR = re.compile(r"\b5\d\d\b|InternalError|ServiceUnavailable", re.I)
_NETWORK = re.compile(r"network|timed? ?out|connection|unreachable|reset by peer|cannot reach|EndpointConnection", re.I)


def failure_reason(error: BaseException) -> FailureReason:
    """The reason label for one failed upload attempt."""
    if isinstance(error, FileChangedError):
        return "changed"
    if isinstance(error, QuotaExceededError | DailyCapError):
        return "quota"
    declared = error.reason if isinstance(error, ProviderError) else None
    if declared in FAILURE_REASONS:
        return declared  # type: ignore[return-value]  # checked against the Literal's values
    text = str(error)
    if isinstance(error, TimeoutError | ConnectionError):
        return "network"
    for pattern, reason in (
        (_RATE_LIMITED, "rate_limited"),
        (_TOO_LONG, "too_long"),
        (_AUTH, "auth"),
        (_SERVER_ERROR, "server_error"),
        (_NETWORK, "network"),
    ):
        if pattern.search(text):
            return reason  # type: ignore[return-value]  # each literal above is a FailureReason
    if isinstance(error, TransientError) and error.retry_after is not None:
        return "rate_limited"  # a server that says when to come back is pacing us
    return "other"
