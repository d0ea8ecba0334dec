"""The S3 provider in the conformance suite, against moto's server mode (a real HTTP server).

One moto server (:mod:`tests.support.emulators.s3`) serves the whole test session; each
harness gets its own bucket, emptied and deleted afterwards. moto cannot inject faults, so
faults are injected on the client side with botocore event hooks: a synthetic 503 SlowDown or
403 AccessDenied answer instead of sending the request, or a HeadObject answer whose
ChecksumSHA256 has been altered. None of this lives in the product code.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from cloudwatcher.config import S3Target
from cloudwatcher.providers.s3 import MIN_PART_SIZE, S3Provider
from tests.providers.harness import EVERY_PROVIDER_FAULTS, THROTTLE_SECONDS, FaultKind, ProviderHarness, Sessions
from tests.support.emulators.s3 import REGION, admin_client, dummy_session, empty_and_delete, moto_endpoint

#: The harness's part size and multipart threshold: S3's (and moto's) minimum, to keep tests fast.
PART_SIZE = MIN_PART_SIZE
_UPLOAD_OPERATIONS = ("PutObject", "CreateMultipartUpload", "UploadPart")


def synthetic_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> AWSResponse:
    """An S3-shaped XML error answer, as botocore would have received it from the wire."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        "<RequestId>harness</RequestId></Error>"
    ).encode()

    class _Raw:
        def stream(self, **_: Any) -> Iterator[bytes]:
            yield body

    return AWSResponse(
        "https://harness.invalid/",
        status,
        HTTPHeaders.from_dict({"Content-Type": "application/xml", **(headers or {})}),
        _Raw(),
    )


def slow_down(retry_after: str = "2") -> AWSResponse:
    """S3's throttling answer, with a Retry-After hint."""
    return synthetic_error(503, "SlowDown", "Please reduce your request rate.", {"Retry-After": retry_after})


def access_denied() -> AWSResponse:
    return synthetic_error(403, "AccessDenied", "Access Denied")


@contextlib.contextmanager
def answer_once(
    provider: S3Provider,
    operations: tuple[str, ...],
    response: Callable[[], AWSResponse],
    *,
    skip: int = 0,
) -> Iterator[None]:
    """Let ``skip`` requests of ``operations`` through, answer the next with ``response()``."""
    lock = threading.Lock()
    seen = 0

    def before_send(**_: Any) -> AWSResponse | None:
        nonlocal seen
        with lock:
            seen += 1
            return response() if seen == skip + 1 else None

    events = [f"before-send.s3.{operation}" for operation in operations]
    for event in events:
        provider.client.meta.events.register(event, before_send)  # type: ignore[arg-type]  # botocore-stubs type handlers as returning None; a before-send handler may answer instead of the wire
    try:
        yield
    finally:
        for event in events:
            provider.client.meta.events.unregister(event, before_send)  # type: ignore[arg-type]  # botocore-stubs type handlers as returning None; a before-send handler may answer instead of the wire


def in_progress_uploads(bucket: str) -> list[dict[str, Any]]:
    """The multipart uploads ``bucket`` holds unfinished."""
    client = admin_client()
    try:
        return list(client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))
    finally:
        client.close()


def abort_all(bucket: str) -> None:
    """Abort every unfinished multipart upload, as a lifecycle rule or another tool would."""
    client = admin_client()
    try:
        for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    finally:
        client.close()


@contextlib.contextmanager
def altered_checksum(provider: S3Provider) -> Iterator[None]:
    """The next HeadObject reports a ChecksumSHA256 that matches no bytes we sent."""
    fired = threading.Event()

    def after_call(parsed: dict[str, Any], **_: Any) -> None:
        if not fired.is_set():
            fired.set()
            parsed["ChecksumSHA256"] = "A" * 43 + "="

    provider.client.meta.events.register("after-call.s3.HeadObject", after_call)
    try:
        yield
    finally:
        provider.client.meta.events.unregister("after-call.s3.HeadObject", after_call)


@contextlib.contextmanager
def make_harness(
    tmp_path: Path,
    *,
    prefix: str = "",
    create_bucket: bool = True,
    target_options: dict[str, Any] | None = None,
    **provider_options: Any,
) -> Iterator[ProviderHarness]:
    """An S3Provider on a fresh bucket of the session's moto server.

    ``target_options`` are further S3Target keys (``bandwidth_limit``, ...); ``provider_options``
    go to the S3Provider constructor (``part_size``, ...).
    """
    bucket = f"cw-{uuid.uuid4().hex[:16]}"
    admin = admin_client()
    if create_bucket:
        admin.create_bucket(Bucket=bucket)
    config = S3Target(
        name="s3",
        provider="s3",
        bucket=bucket,
        prefix=prefix,
        region=REGION,
        endpoint_url=moto_endpoint(),
        **(target_options or {}),
    )
    options: dict[str, Any] = {"multipart_threshold": PART_SIZE, "part_size": PART_SIZE}
    options.update(provider_options)
    provider = S3Provider(config, session=dummy_session(), **options)

    @contextlib.contextmanager
    def fault(kind: FaultKind) -> Iterator[None]:
        if kind == "transient":
            with answer_once(provider, _UPLOAD_OPERATIONS, slow_down):
                yield
        elif kind == "permanent":
            with answer_once(provider, _UPLOAD_OPERATIONS, access_denied):
                yield
        elif kind == "throttled":
            with answer_once(provider, _UPLOAD_OPERATIONS, lambda: slow_down(str(THROTTLE_SECONDS))):
                yield
        else:
            with altered_checksum(provider):
                yield

    try:
        yield ProviderHarness(
            provider=provider,
            fault=fault,
            chunk_size=PART_SIZE,
            forbidden_name=None,
            faults=EVERY_PROVIDER_FAULTS | {"throttled"},  # S3 has no quota of its own
            sessions=Sessions(open=lambda: len(in_progress_uploads(bucket)), expire=lambda: abort_all(bucket)),
        )
    finally:
        # Synchronously: this teardown may run inside or outside an event loop.
        provider.client.close()
        provider._executor.shutdown(wait=True, cancel_futures=True)
        if create_bucket:
            empty_and_delete(admin, bucket)
        admin.close()
