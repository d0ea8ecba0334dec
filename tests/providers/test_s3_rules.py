"""The S3 provider's rules that need no server: which errors are worth a retry, how large a part
must be for a file to fit in S3's 10,000 parts, and how a configured prefix is spelled."""

from __future__ import annotations

import math

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from cloudwatcher.providers import PermanentError, TransientError
from cloudwatcher.providers.s3 import MIB, normalise_prefix, part_size_for, translate_error


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (500, "InternalError", TransientError),
        (503, "ServiceUnavailable", TransientError),
        (400, "RequestTimeout", TransientError),
        (429, "TooManyRequests", TransientError),
        (403, "AccessDenied", PermanentError),
        (404, "NoSuchBucket", PermanentError),
        (400, "InvalidBucketName", PermanentError),
        (400, "EntityTooLarge", PermanentError),
        (400, "InvalidArgument", PermanentError),
    ],
)
def test_s3_error_codes_map_to_their_retry_class(status: int, code: str, expected: type) -> None:
    error = ClientError(
        {
            "Error": {"Code": code, "Message": "m"},
            "ResponseMetadata": {
                "HTTPStatusCode": status,
                "RequestId": "r",
                "HostId": "h",
                "HTTPHeaders": {},
                "RetryAttempts": 0,
            },
        },
        "PutObject",
    )
    translated = translate_error(error, "PutObject s3://b/k")
    assert type(translated) is expected
    assert code in str(translated)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ReadTimeoutError(endpoint_url="https://s3.example"), TransientError),
        (ConnectionClosedError(endpoint_url="https://s3.example"), TransientError),
        (EndpointConnectionError(endpoint_url="https://s3.example"), TransientError),
        (NoCredentialsError(), PermanentError),
    ],
    ids=["read-timeout", "connection-closed", "endpoint-unreachable", "no-credentials"],
)
def test_network_and_credential_failures_map_to_their_retry_class(error: Exception, expected: type) -> None:
    assert type(translate_error(error, "PutObject s3://b/k")) is expected


@pytest.mark.parametrize("size", [0, 8 * MIB, 80 * 1024**3, 1024**4, 40 * 1024**4])
def test_part_size_grows_so_that_huge_files_fit_in_10000_parts(size: int) -> None:
    part = part_size_for(size, 8 * MIB)
    assert part >= 8 * MIB and part % MIB == 0
    assert math.ceil(size / part) <= 10_000
    assert part == 8 * MIB or math.ceil(size / (part - MIB)) > 10_000  # grown no more than needed


def test_file_beyond_s3s_multipart_limit_is_permanent() -> None:
    with pytest.raises(PermanentError, match="multipart limit"):
        part_size_for(10_000 * 5 * 1024**3 + 1, 8 * MIB)


@pytest.mark.parametrize("prefix", ["a/b/", "/a/b", "a/b", "/a/b/"])
def test_prefix_spellings_normalise_alike(prefix: str) -> None:
    assert normalise_prefix(prefix) == "a/b/"
