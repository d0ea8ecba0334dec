"""S3-specific behaviour beyond the conformance suite: multipart, resume, aborts, errors, keys."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from botocore.awsrequest import AWSResponse
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from cloudwatcher.config import S3Target
from cloudwatcher.providers import (
    FileChangedError,
    PermanentError,
    TransientError,
    UploadJob,
)
from cloudwatcher.providers.s3 import (
    PART_ATTEMPTS,
    S3Provider,
    composite_sha256,
)
from tests.providers.harness import ProviderHarness
from tests.providers.harness_s3 import (
    PART_SIZE,
    REGION,
    access_denied,
    admin_client,
    answer_once,
    dummy_session,
    in_progress_uploads,
    make_harness,
    moto_endpoint,
    slow_down,
    synthetic_error,
)
from tests.support.upload_jobs import StateLog, make_job

REPO_ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def counting(provider: S3Provider, operation: str) -> Iterator[list[int]]:
    """Count the requests of ``operation`` the provider sends (a one-element list)."""
    count = [0]
    lock = threading.Lock()

    def before_send(**_: Any) -> None:
        with lock:
            count[0] += 1

    event = f"before-send.s3.{operation}"
    provider.client.meta.events.register(event, before_send)
    try:
        yield count
    finally:
        provider.client.meta.events.unregister(event, before_send)


def bucket_of(harness: ProviderHarness) -> str:
    provider = harness.provider
    assert isinstance(provider, S3Provider)
    return provider.bucket


def s3(harness: ProviderHarness) -> S3Provider:
    assert isinstance(harness.provider, S3Provider)
    return harness.provider


def part_digests(data: bytes, part_size: int) -> list[bytes]:
    return [hashlib.sha256(data[i : i + part_size]).digest() for i in range(0, len(data), part_size)]


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[ProviderHarness]:
    with make_harness(tmp_path) as built:
        yield built


async def test_file_above_the_threshold_goes_up_in_parts_with_a_verified_composite_checksum(
    harness: ProviderHarness, tmp_path: Path
) -> None:
    data = os.urandom(2 * PART_SIZE + 5)
    job = make_job(tmp_path, "dev1/requests/big.bin", data)
    states = StateLog()
    with counting(s3(harness), "UploadPart") as parts, counting(s3(harness), "PutObject") as puts:
        result = await harness.provider.upload(job, states)
    assert (parts[0], puts[0]) == (3, 0)
    composite = composite_sha256(part_digests(data, PART_SIZE))
    assert result.verification == "hash"
    assert result.remote_hash in (f"sha256:{composite}", f"sha256:{composite}-3")
    assert result.remote_size == len(data)
    head = admin_client().head_object(Bucket=bucket_of(harness), Key="dev1/requests/big.bin")
    assert head["ETag"].strip('"').endswith("-3")
    assert await harness.provider.read("dev1/requests/big.bin") == data
    assert states.last is None  # the session is cleared once the object exists


async def test_small_file_is_one_put_verified_by_its_full_sha256(harness: ProviderHarness, tmp_path: Path) -> None:
    data = b"a small request"
    with counting(s3(harness), "PutObject") as puts:
        result = await harness.provider.upload(make_job(tmp_path, "dev1/requests/s.json", data), StateLog())
    assert puts[0] == 1
    assert result.remote_hash == "sha256:" + base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert result.verification == "hash"
    stat = await harness.provider.stat("dev1/requests/s.json")
    assert stat is not None and stat.hashes == {"sha256": hashlib.sha256(data).hexdigest()}


@pytest.mark.parametrize("size", [100, 2 * PART_SIZE + 1])
async def test_write_only_credentials_verify_the_checksum_s3_acknowledged(
    harness: ProviderHarness, tmp_path: Path, size: int
) -> None:
    data = os.urandom(size)
    denied = functools.partial(synthetic_error, 403, "403", "Forbidden")
    with answer_once(s3(harness), ("HeadObject",), denied):
        result = await harness.provider.upload(make_job(tmp_path, "dev1/requests/wo.bin", data), StateLog())
    assert result.remote_size == size
    if size < PART_SIZE:
        assert result.verification == "hash"
        assert result.remote_hash == "sha256:" + base64.b64encode(hashlib.sha256(data).digest()).decode()
    else:  # moto's CompleteMultipartUpload answer carries no checksum (S3's does): its
        # multipart ETag (MD5 of the part MD5s) is what is verified.
        assert result.verification == "hash"
        assert result.remote_hash is not None and result.remote_hash.startswith("md5:")
        assert result.remote_hash.endswith("-3")
    assert await harness.provider.read("dev1/requests/wo.bin") == data


async def test_multipart_upload_refused_on_a_part_is_aborted_and_leaves_no_parts(
    harness: ProviderHarness, tmp_path: Path
) -> None:
    job = make_job(tmp_path, "dev1/requests/fails.bin", os.urandom(2 * PART_SIZE + 1))
    states = StateLog()
    with answer_once(s3(harness), ("UploadPart",), access_denied, skip=1), pytest.raises(PermanentError):
        await harness.provider.upload(job, states)
    assert in_progress_uploads(bucket_of(harness)) == []
    assert states.calls[0] is not None and states.last is None
    assert await harness.provider.stat("dev1/requests/fails.bin") is None


def internal_error() -> AWSResponse:
    return synthetic_error(500, "InternalError", "We encountered an internal error. Please try again.")


@pytest.mark.parametrize("transient", [internal_error, functools.partial(slow_down, "1")])
async def test_a_transient_error_on_one_part_resends_that_part_only(
    harness: ProviderHarness, tmp_path: Path, transient: Callable[[], AWSResponse]
) -> None:
    data = os.urandom(3 * PART_SIZE + 9)
    job = make_job(tmp_path, "dev1/requests/blip.bin", data)
    sent: list[int] = []

    def note(params: dict[str, Any], **_: Any) -> None:
        sent.append(int(params["PartNumber"]))

    provider = s3(harness)
    provider.client.meta.events.register("before-parameter-build.s3.UploadPart", note)
    try:
        with (
            answer_once(provider, ("UploadPart",), transient, skip=2),
            counting(provider, "CreateMultipartUpload") as made,
            counting(provider, "AbortMultipartUpload") as aborted,
        ):
            result = await harness.provider.upload(job, StateLog())
    finally:
        provider.client.meta.events.unregister("before-parameter-build.s3.UploadPart", note)
    assert sorted(sent) == [1, 2, 3, 3, 4]  # part 3 twice, nothing restarted from zero
    assert (made[0], aborted[0]) == (1, 0)
    assert result.verification == "hash"
    assert await harness.provider.read("dev1/requests/blip.bin") == data


async def test_a_part_that_keeps_failing_keeps_the_session_for_the_next_attempt(
    harness: ProviderHarness, tmp_path: Path
) -> None:
    data = os.urandom(2 * PART_SIZE + 5)
    job = make_job(tmp_path, "dev1/requests/stubborn.bin", data)
    states = StateLog()
    provider = s3(harness)
    tries: list[int] = []

    def part_two_fails(request: Any, **_: Any) -> AWSResponse | None:
        if "partNumber=2" not in request.url:
            return None
        tries.append(2)
        return internal_error()

    provider.client.meta.events.register(
        "before-send.s3.UploadPart",
        part_two_fails,  # type: ignore[arg-type]  # botocore-stubs type handlers as returning None; a before-send handler may answer instead of the wire
    )
    try:
        with pytest.raises(TransientError, match="InternalError"):
            await harness.provider.upload(job, states)
    finally:
        provider.client.meta.events.unregister(
            "before-send.s3.UploadPart",
            part_two_fails,  # type: ignore[arg-type]  # botocore-stubs type handlers as returning None; a before-send handler may answer instead of the wire
        )
    assert len(tries) == PART_ATTEMPTS
    assert len(in_progress_uploads(bucket_of(harness))) == 1
    assert states.last is not None and [part["PartNumber"] for part in states.last["parts"]] == [1]

    with counting(provider, "UploadPart") as sent, counting(provider, "CreateMultipartUpload") as made:
        result = await harness.provider.upload(dataclasses.replace(job, resume_state=states.last), states)
    assert (sent[0], made[0]) == (2, 0)
    assert result.verification == "hash"
    assert await harness.provider.read("dev1/requests/stubborn.bin") == data
    assert in_progress_uploads(bucket_of(harness)) == []


async def test_a_file_changed_while_a_part_failed_is_aborted(harness: ProviderHarness, tmp_path: Path) -> None:
    job = make_job(tmp_path, "dev1/requests/moving.bin", os.urandom(2 * PART_SIZE + 5))
    provider = s3(harness)

    def change_then_fail() -> AWSResponse:
        job.local_file.write_bytes(os.urandom(job.size + 1))
        return synthetic_error(503, "SlowDown", "Please reduce your request rate.", {"Retry-After": "60"})

    states = StateLog()
    with answer_once(provider, ("UploadPart",), change_then_fail, skip=1), pytest.raises(FileChangedError):
        await harness.provider.upload(job, states)
    assert in_progress_uploads(bucket_of(harness)) == []
    assert states.last is None


async def interrupt_after_parts(provider: S3Provider, job: UploadJob, parts: int) -> dict[str, Any]:
    """Start ``job`` and cancel it (a daemon stopping) once ``parts`` parts are saved."""
    saved: list[dict[str, Any]] = []

    async def save_state(state: dict[str, Any] | None) -> None:
        assert state is not None
        saved.append(json.loads(json.dumps(state)))
        if len(state["parts"]) == parts:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await provider.upload(job, save_state)
    return saved[-1]


async def test_interrupted_multipart_upload_resumes_without_sending_its_parts_again(
    harness: ProviderHarness, tmp_path: Path
) -> None:
    data = os.urandom(3 * PART_SIZE + 17)
    job = make_job(tmp_path, "dev1/requests/resume.bin", data)
    state = await interrupt_after_parts(s3(harness), job, parts=2)
    assert [part["PartNumber"] for part in state["parts"]] == [1, 2]
    assert len(in_progress_uploads(bucket_of(harness))) == 1  # kept for the restarted daemon

    states = StateLog()
    resumed = dataclasses.replace(job, resume_state=state)
    with counting(s3(harness), "UploadPart") as sent, counting(s3(harness), "CreateMultipartUpload") as made:
        await harness.provider.upload(resumed, states)
    assert (sent[0], made[0]) == (2, 0)


async def test_resume_of_an_upload_s3_no_longer_knows_starts_over(harness: ProviderHarness, tmp_path: Path) -> None:
    data = os.urandom(2 * PART_SIZE + 3)
    job = make_job(tmp_path, "dev1/requests/expired.bin", data)
    state = await interrupt_after_parts(s3(harness), job, parts=1)
    admin_client().abort_multipart_upload(Bucket=bucket_of(harness), Key=state["key"], UploadId=state["upload_id"])
    resumed = dataclasses.replace(job, resume_state=state)
    with counting(s3(harness), "UploadPart") as sent:
        await harness.provider.upload(resumed, StateLog())
    assert sent[0] == 3


async def test_resume_of_a_file_changed_since_is_refused_and_aborted(harness: ProviderHarness, tmp_path: Path) -> None:
    job = make_job(tmp_path, "dev1/requests/changed.bin", os.urandom(2 * PART_SIZE + 3))
    state = await interrupt_after_parts(s3(harness), job, parts=1)
    job.local_file.write_bytes(os.urandom(job.size))  # same size, new content
    states = StateLog()
    with pytest.raises(FileChangedError):
        await harness.provider.upload(dataclasses.replace(job, resume_state=state), states)
    assert in_progress_uploads(bucket_of(harness)) == []
    assert states.last is None


async def test_missing_bucket_is_permanent(tmp_path: Path) -> None:
    with make_harness(tmp_path, create_bucket=False) as harness:
        for name, size in (("small", 10), ("large", PART_SIZE)):
            job = make_job(tmp_path, f"dev1/requests/{name}.bin", os.urandom(size))
            with pytest.raises(PermanentError, match="NoSuchBucket"):
                await harness.provider.upload(job, StateLog())


async def test_slow_down_names_s3s_error_code(harness: ProviderHarness, tmp_path: Path) -> None:
    job = make_job(tmp_path, "dev1/requests/slow.txt", b"later")
    with answer_once(s3(harness), ("PutObject",), slow_down), pytest.raises(TransientError) as raised:
        await harness.provider.upload(job, StateLog())
    assert "SlowDown" in str(raised.value)


async def test_unreachable_endpoint_is_transient(tmp_path: Path) -> None:
    config = S3Target(name="s3", provider="s3", bucket="nowhere", region=REGION, endpoint_url="http://127.0.0.1:9")
    provider = S3Provider(config, session=dummy_session(), connect_timeout=2)
    try:
        with pytest.raises(TransientError):
            await provider.upload(make_job(tmp_path, "dev1/requests/x.txt", b"x"), StateLog())
    finally:
        await provider.close()


async def test_prefixes_with_and_without_slashes_give_the_same_keys(tmp_path: Path) -> None:
    keys = []
    for prefix in ("a/b/", "/a/b"):
        with make_harness(tmp_path / prefix.replace("/", "_"), prefix=prefix) as harness:
            result = await harness.provider.upload(make_job(tmp_path, "dev1/requests/x.txt", b"x"), StateLog())
            listed = admin_client().list_objects_v2(Bucket=bucket_of(harness))["Contents"]
            keys.append([item["Key"] for item in listed])
            assert result.cloud_path == f"s3://{bucket_of(harness)}/a/b/dev1/requests/x.txt"
            assert await harness.provider.read("dev1/requests/x.txt") == b"x"
    assert keys == [["a/b/dev1/requests/x.txt"], ["a/b/dev1/requests/x.txt"]]


async def test_key_over_1024_bytes_is_refused_before_sending(harness: ProviderHarness, tmp_path: Path) -> None:
    name = "dev1/requests/" + "é" * 510 + ".txt"  # 1,038 bytes of UTF-8
    with counting(s3(harness), "PutObject") as puts, pytest.raises(PermanentError, match="1024"):
        await harness.provider.upload(make_job(tmp_path, name, b"x"), StateLog())
    assert puts[0] == 0


async def test_bandwidth_limit_paces_the_bytes_sent(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024)
    with make_harness(tmp_path, target_options={"bandwidth_limit": "1M"}) as harness:
        started = time.monotonic()
        await harness.provider.upload(make_job(tmp_path, "dev1/requests/paced.bin", data), StateLog())
        elapsed = time.monotonic() - started
    # A one-second burst, then 1 MiB per second: 3 MiB cannot take less than two seconds.
    assert elapsed >= 1.9


async def test_close_interrupts_a_body_still_streaming(tmp_path: Path) -> None:
    data = os.urandom(4 * 1024 * 1024)
    with make_harness(tmp_path, target_options={"bandwidth_limit": "1M"}) as harness:
        upload = asyncio.create_task(
            harness.provider.upload(make_job(tmp_path, "dev1/requests/slow.bin", data), StateLog())
        )
        await asyncio.sleep(0.5)
        upload.cancel()  # what the daemon does to unfinished uploads on shutdown
        started = time.monotonic()
        await harness.provider.close()
        closing = time.monotonic() - started
        listed = admin_client().list_objects_v2(Bucket=bucket_of(harness)).get("Contents", [])
    assert listed == []  # the interrupted body never became an object
    # Without the interruption close() would wait for the remaining ~2.5 MiB at 1 MiB/s.
    assert closing < 1.0
    assert upload.cancelled()


async def test_requests_per_second_limits_every_http_request(tmp_path: Path) -> None:
    with make_harness(tmp_path, target_options={"requests_per_second": 4}) as harness:
        started = time.monotonic()
        for number in range(4):  # PutObject + HeadObject each: 8 requests, a burst of 4
            job = make_job(tmp_path, f"dev1/requests/r{number}.txt", b"r")
            await harness.provider.upload(job, StateLog())
        elapsed = time.monotonic() - started
    assert elapsed >= 0.9


@pytest.fixture(scope="module")
def tls_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The same moto backend behind HTTPS with a certificate from a private test CA."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    bundle = tmp_path_factory.mktemp("tls") / "test-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    moto_endpoint()  # the plain server sets up moto's backends and quietens its logging
    server = make_server(
        "127.0.0.1",
        0,
        DomainDispatcherApplication(create_backend_app),
        threaded=True,
        request_handler=MotoRequestHandler,
        ssl_context=context,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_port}", bundle
    server.shutdown()
    thread.join()


def tls_provider(harness: ProviderHarness, endpoint: str, ca_bundle: Path | None) -> S3Provider:
    config = S3Target(
        name="s3-tls",
        provider="s3",
        bucket=bucket_of(harness),
        region=REGION,
        endpoint_url=endpoint,
        ca_bundle=ca_bundle,
    )
    return S3Provider(config, session=dummy_session())


@pytest.fixture
def no_trust_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(variable, raising=False)


@pytest.mark.usefixtures("no_trust_overrides")
async def test_target_ca_bundle_is_trusted_for_https_endpoints(
    harness: ProviderHarness, tmp_path: Path, tls_endpoint: tuple[str, Path]
) -> None:
    endpoint, bundle = tls_endpoint
    provider = tls_provider(harness, endpoint, bundle)
    try:
        result = await provider.upload(make_job(tmp_path, "dev1/requests/tls.txt", b"over tls"), StateLog())
        assert result.verification == "hash"
        assert await provider.read("dev1/requests/tls.txt") == b"over tls"
    finally:
        await provider.close()


def test_missing_ca_bundle_file_is_a_configuration_error(tmp_path: Path) -> None:
    config = S3Target(name="s3", provider="s3", bucket="bkt", region=REGION, ca_bundle=tmp_path / "absent.pem")
    with pytest.raises(ValueError, match="ca_bundle"):
        S3Provider(config, session=dummy_session())


@pytest.mark.usefixtures("no_trust_overrides")
async def test_unknown_certificate_is_refused_as_permanent(
    harness: ProviderHarness, tmp_path: Path, tls_endpoint: tuple[str, Path]
) -> None:
    provider = tls_provider(harness, tls_endpoint[0], None)
    try:
        with pytest.raises(PermanentError, match="TLS"):
            await provider.upload(make_job(tmp_path, "dev1/requests/tls.txt", b"x"), StateLog())
    finally:
        await provider.close()


@pytest.mark.usefixtures("no_trust_overrides")
async def test_ssl_cert_file_is_trusted_when_the_target_names_no_bundle(
    harness: ProviderHarness, tmp_path: Path, tls_endpoint: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, bundle = tls_endpoint
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    provider = tls_provider(harness, endpoint, None)
    try:
        await provider.upload(make_job(tmp_path, "dev1/requests/tls.txt", b"env"), StateLog())
        assert await provider.read("dev1/requests/tls.txt") == b"env"
    finally:
        await provider.close()


_MEMORY_PROBE = textwrap.dedent(
    """
    import asyncio, json, sys, tracemalloc
    from pathlib import Path
    from cloudwatcher.config import S3Target
    from cloudwatcher.providers import UploadJob
    from cloudwatcher.providers.s3 import S3Provider
    from tests.providers.harness_s3 import dummy_session

    endpoint, bucket, path, size, sha256, threshold = sys.argv[1:7]

    async def main() -> int:
        config = S3Target(name="s3", provider="s3", bucket=bucket, region="us-east-1",
                          endpoint_url=endpoint)
        provider = S3Provider(config, session=dummy_session(), multipart_threshold=int(threshold),
                              part_size=5 * 1024 * 1024)
        async def save_state(state): return None
        job = UploadJob(local_file=Path(path), remote_path="dev1/requests/huge.bin", size=int(size),
                        sha256=sha256, mtime_ns=0)
        await provider.stat("dev1/requests/warm-up")  # botocore loads its models lazily
        tracemalloc.start()
        result = await provider.upload(job, save_state)
        peak = tracemalloc.get_traced_memory()[1]
        await provider.close()
        assert result.verification == "hash", result
        return peak

    print(json.dumps({"peak": asyncio.run(main())}))
    """
)


@pytest.mark.parametrize("mode", ["multipart", "single-put"])
async def test_memory_stays_flat_however_large_the_file(harness: ProviderHarness, tmp_path: Path, mode: str) -> None:
    size = 24 * 1024 * 1024
    local = tmp_path / "huge.bin"
    digest = hashlib.sha256()
    with local.open("wb") as out:
        for _ in range(size // (1024 * 1024)):
            block = os.urandom(1024 * 1024)
            digest.update(block)
            out.write(block)
    threshold = PART_SIZE if mode == "multipart" else 64 * 1024 * 1024
    # A separate process, so that moto's own copy of the bytes is not counted.
    args = [moto_endpoint(), bucket_of(harness), str(local), str(size), digest.hexdigest(), str(threshold)]
    probe = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", _MEMORY_PROBE, *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    peak = json.loads(probe.stdout.strip().splitlines()[-1])["peak"]
    # Below one part: neither the file nor a whole part was ever held in memory (measured ~3.3 MB
    # for 6 MiB and 48 MiB files alike: 1 MiB hashing blocks and botocore's own buffers).
    assert peak < PART_SIZE, f"peak Python allocation {peak} bytes for a {size}-byte file"


@contextlib.contextmanager
def store_without_checksums(provider: S3Provider, *, etag: str | None = None, kms: bool = False) -> Iterator[None]:
    """The store keeps no SHA-256 checksums (HeadObject and the upload's answer carry none), as
    some S3-compatible stores do; ``etag`` replaces the ETag it reports, ``kms`` marks the object
    SSE-KMS encrypted (whose ETag is not an MD5 of the data)."""

    def after_call(parsed: dict[str, Any], **_: Any) -> None:
        for field in ("ChecksumSHA256", "ChecksumType"):
            parsed.pop(field, None)
        if etag is not None:
            parsed["ETag"] = f'"{etag}"'
        if kms:
            parsed["ServerSideEncryption"] = "aws:kms"

    events = [f"after-call.s3.{operation}" for operation in ("HeadObject", "PutObject", "CompleteMultipartUpload")]
    for event in events:
        provider.client.meta.events.register(event, after_call)
    try:
        yield
    finally:
        for event in events:
            provider.client.meta.events.unregister(event, after_call)


@contextlib.contextmanager
def content_md5_headers(provider: S3Provider) -> Iterator[list[str]]:
    """The Content-MD5 header of every PutObject and UploadPart request, as sent."""
    sent: list[str] = []

    def before_send(request: Any, **_: Any) -> None:
        value = request.headers.get("Content-MD5")
        sent.append(value.decode() if isinstance(value, bytes) else str(value))

    events = [f"before-send.s3.{operation}" for operation in ("PutObject", "UploadPart")]
    for event in events:
        provider.client.meta.events.register(event, before_send)
    try:
        yield sent
    finally:
        for event in events:
            provider.client.meta.events.unregister(event, before_send)


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


async def test_a_store_without_checksums_verifies_a_single_put_by_its_md5_etag(
    harness: ProviderHarness, tmp_path: Path
) -> None:
    data = b"a request for a store without checksums"
    with store_without_checksums(s3(harness)), content_md5_headers(s3(harness)) as sent:
        result = await harness.provider.upload(make_job(tmp_path, "dev1/requests/nosum.json", data), StateLog())
    assert sent == [md5_b64(data)]
    assert (result.verification, result.remote_hash) == ("hash", f"md5:{hashlib.md5(data).hexdigest()}")


async def test_a_store_without_checksums_verifies_a_multipart_upload_by_its_composite_etag(
    harness: ProviderHarness, tmp_path: Path
) -> None:
    data = os.urandom(2 * PART_SIZE + 11)
    chunks = [data[i : i + PART_SIZE] for i in range(0, len(data), PART_SIZE)]
    expected = hashlib.md5(b"".join(hashlib.md5(chunk).digest() for chunk in chunks)).hexdigest() + "-3"
    with store_without_checksums(s3(harness)), content_md5_headers(s3(harness)) as sent:
        result = await harness.provider.upload(make_job(tmp_path, "dev1/requests/nosum.bin", data), StateLog())
    assert sent == [md5_b64(chunk) for chunk in chunks]
    assert (result.verification, result.remote_hash) == ("hash", f"md5:{expected}")


@pytest.mark.parametrize("size", [100, 2 * PART_SIZE + 1])
async def test_a_store_without_checksums_reporting_another_md5_etag_fails_the_attempt(
    harness: ProviderHarness, tmp_path: Path, size: int
) -> None:
    wrong = "0" * 32 + ("-3" if size > PART_SIZE else "")
    job = make_job(tmp_path, "dev1/requests/wrong-etag.bin", os.urandom(size))
    with store_without_checksums(s3(harness), etag=wrong), pytest.raises(TransientError, match="ETag"):
        await harness.provider.upload(job, StateLog())


async def test_an_encrypted_object_whose_etag_is_no_md5_counts_as_verified_in_transport(
    harness: ProviderHarness, tmp_path: Path
) -> None:
    data = os.urandom(500)
    with store_without_checksums(s3(harness), etag="9" * 32, kms=True), content_md5_headers(s3(harness)) as sent:
        result = await harness.provider.upload(make_job(tmp_path, "dev1/requests/kms.bin", data), StateLog())
    assert sent == [md5_b64(data)]  # the store checked this on receipt
    assert (result.verification, result.remote_hash) == ("transport", None)
