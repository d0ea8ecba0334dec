"""Botocore and local I/O failures mapped onto the daemon's retry classes.

https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
"""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    SSLError,
)

from cloudwatcher.providers.base import PermanentError, ProviderError, TransientError
from cloudwatcher.providers.errors import to_provider_error

# Codes that may succeed later. RequestTimeTooSkewed and ExpiredToken heal once the clock or
# the credentials are refreshed; OperationAborted is a conflicting operation still running;
# NoSuchUpload and InvalidPart mean the multipart session vanished (a lifecycle rule, another
# process's abort): the failed attempt is aborted and the next one starts a fresh session.
# The digest codes mean the bytes S3 received do not match the checksum we sent: damaged on the
# way (a retry succeeds) or the file changed under us (the upload path checks that first).
# fmt: off
_TRANSIENT_CODES = frozenset({
    "SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "Throttling",
    "ThrottlingException", "RequestThrottled", "RequestLimitExceeded", "TooManyRequests",
    "TooManyRequestsException", "RequestTimeTooSkewed", "ExpiredToken", "OperationAborted",
    "BadDigest", "XAmzContentSHA256Mismatch", "InvalidDigest", "NoSuchUpload", "InvalidPart",
})
# Codes no retry can fix: wrong bucket, missing permission or credentials, a request S3 refuses.
_PERMANENT_CODES = frozenset({
    "AccessDenied", "AllAccessDisabled", "AccountProblem", "NoSuchBucket", "InvalidBucketName",
    "EntityTooLarge", "InvalidArgument", "KeyTooLongError", "InvalidAccessKeyId",
    "SignatureDoesNotMatch", "InvalidStorageClass", "NotImplemented",
})
# fmt: on
NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def _verdict(code: str, status: int) -> bool | None:
    """S3's codes decide first; an unknown code with no status had no answer (retryable), else the status decides."""
    if code in _TRANSIENT_CODES:
        return True
    if code in _PERMANENT_CODES:
        return False
    return True if status == 0 else None


def translate_error(exc: BaseException, where: str) -> ProviderError:
    """Map a botocore or local I/O failure to the daemon's retry classes, with an actionable message."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        code = str(error.get("Code", "Unknown"))
        status = int(meta.get("HTTPStatusCode") or 0)
        message = f"{where}: {code} (HTTP {status}): {error.get('Message', '')}".rstrip(": ")
        return to_provider_error(
            message,
            status,
            retry_after=meta.get("HTTPHeaders", {}).get("retry-after"),
            retryable=_verdict(code, status),
        )
    if isinstance(exc, SSLError):
        return PermanentError(f"{where}: TLS verification failed (check ca_bundle): {exc}")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return PermanentError(f"{where}: no usable AWS credentials in the standard chain: {exc}")
    if isinstance(exc, NoRegionError | ParamValidationError):
        return PermanentError(f"{where}: {exc}")
    if isinstance(exc, CredentialRetrievalError | BotoCoreError):
        # EndpointConnectionError, ConnectionClosedError, ReadTimeoutError, ConnectTimeoutError,
        # ResponseStreamingError, ...: the network, not the request, failed.
        return TransientError(f"{where}: {exc}")
    if isinstance(exc, FileNotFoundError):
        return PermanentError(f"local file vanished: {exc.filename}")
    if isinstance(exc, OSError):
        return TransientError(f"{where}: {exc.strerror or exc} ({exc.filename or 'local file'})")
    return TransientError(f"{where}: {type(exc).__name__}: {exc}")


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
