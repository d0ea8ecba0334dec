"""Each provider's errors land on the reason an operator alerts on, from a fixed set."""

from __future__ import annotations

import pytest

from cloudwatcher.daemon.upload.failure_reasons import FAILURE_REASONS, failure_reason
from cloudwatcher.providers.base import (
    DailyCapError,
    FileChangedError,
    PermanentError,
    QuotaExceededError,
    TransientError,
)
from cloudwatcher.providers.sharepoint.errors import QuickXorMismatchError, classify


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (classify(429, "activityLimitReached", "slow down"), "rate_limited"),
        (classify(503, "serviceNotAvailable", "try later"), "server_error"),
        (classify(401, "InvalidAuthenticationToken", "expired"), "auth"),
        (classify(403, "accessDenied", "no"), "auth"),
        (classify(507, "insufficientStorage", "full"), "quota"),
        (classify(400, "invalidRequest", "The path is too long"), "too_long"),
        (QuotaExceededError("Google Drive answered 403 storageQuotaExceeded"), "quota"),
        (DailyCapError("Google Drive answered 403 uploadLimitExceeded", retry_after=3600), "quota"),
        (TransientError("S3 put: SlowDown (HTTP 503): Reduce your request rate"), "rate_limited"),
        (PermanentError("S3 put: KeyTooLongError (HTTP 400): Your key is too long"), "too_long"),
        (PermanentError("S3 put: InvalidAccessKeyId (HTTP 403): unknown key"), "auth"),
        (TransientError("network error talking to Google Drive: ConnectionResetError()"), "network"),
        (TimeoutError(), "network"),
        (FileChangedError("file changed during upload"), "changed"),
        (QuickXorMismatchError("SharePoint reported another quickXorHash"), "server_modified"),
        (TransientError("paced", retry_after=2.0), "rate_limited"),
        (ValueError("something nobody expected"), "other"),
    ],
)
def test_an_upload_error_is_counted_under_its_reason(error: BaseException, reason: str) -> None:
    assert failure_reason(error) == reason
    assert reason in FAILURE_REASONS


def test_a_reason_a_provider_declares_wins_over_its_message() -> None:
    error = TransientError("HTTP 500 while the token was refreshed")
    error.reason = "auth"
    assert failure_reason(error) == "auth"


def test_the_reason_set_is_exactly_the_documented_one() -> None:
    assert {
        "rate_limited",
        "server_error",
        "network",
        "auth",
        "quota",
        "changed",
        "server_modified",
        "too_long",
        "other",
    } == FAILURE_REASONS
