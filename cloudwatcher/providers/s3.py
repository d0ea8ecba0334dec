"""Amazon S3 and S3-compatible stores, through boto3.

Small files go up in one ``PutObject``; from ``multipart_threshold`` on, a multipart upload
whose session is saved after every part so that a restarted daemon resumes it. Every request
carries our own SHA-256 (``x-amz-checksum-sha256``), so S3 refuses bytes that do not match
what we hashed, and ``HeadObject(ChecksumMode="ENABLED")`` lets us check the stored object
afterwards. Bytes are streamed from disk with ``os.pread`` in bounded blocks: memory does not
grow with the file size.

The daemon owns the retry policy, so botocore makes exactly one attempt per call and every
failure is mapped to :class:`TransientError` or :class:`PermanentError` here.

S3 references:
- multipart limits: https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html
- checksums (composite for multipart SHA-256):
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html
- error codes: https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import functools
import hashlib
import io
import logging
import math
import os
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar, cast

import boto3
from botocore.config import Config
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

from cloudwatcher.config import S3Target
from cloudwatcher.providers.base import (
    FileChangedError,
    PermanentError,
    ProviderError,
    RemoteFile,
    SaveState,
    TransientError,
    UploadJob,
    UploadResult,
    Verification,
)
from cloudwatcher.providers.pacing import TargetPacing

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, PutObjectOutputTypeDef

__all__ = ["S3Provider"]

log = logging.getLogger(__name__)

T = TypeVar("T")

MIB = 1024 * 1024
MIN_PART_SIZE = 5 * MIB  # S3 refuses smaller parts (except the last): EntityTooSmall
MAX_PART_SIZE = 5 * 1024 * MIB
MAX_PARTS = 10_000
MAX_KEY_BYTES = 1024
DEFAULT_PART_SIZE = 8 * MIB
DEFAULT_MULTIPART_THRESHOLD = 8 * MIB
_READ_BLOCK = MIB

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
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def normalise_prefix(prefix: str) -> str:
    """``"a/b/"``, ``"/a/b"`` and ``"a/b"`` all become ``"a/b/"``; an empty prefix stays empty."""
    stripped = prefix.strip("/")
    return f"{stripped}/" if stripped else ""


def composite_sha256(part_digests: list[bytes]) -> str:
    """S3's checksum of a multipart object: sha256 of the concatenated binary part digests."""
    return base64.b64encode(hashlib.sha256(b"".join(part_digests)).digest()).decode()


def part_size_for(size: int, preferred: int) -> int:
    """``preferred``, grown in whole MiB when needed so that ``size`` bytes fit in 10,000 parts."""
    needed = math.ceil(size / MAX_PARTS)
    if needed <= preferred:
        return preferred
    grown = math.ceil(needed / MIB) * MIB
    if grown > MAX_PART_SIZE:
        raise PermanentError(f"file of {size} bytes is over S3's multipart limit (10,000 parts of 5 GiB)")
    return grown


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """The ``Retry-After`` hint in seconds (delta-seconds or an HTTP date), if the server gave one."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


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
        if code in _TRANSIENT_CODES:
            return TransientError(message, retry_after=_retry_after(meta.get("HTTPHeaders", {})))
        if code in _PERMANENT_CODES:
            return PermanentError(message)
        if status >= 500 or status == 429 or status == 0:
            return TransientError(message, retry_after=_retry_after(meta.get("HTTPHeaders", {})))
        return PermanentError(message)
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


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _default_trust() -> str | None:
    """The CA bundle to use when the target names none (CONTRACT.md section 3, TLS).

    boto's own default is certifi's bundle; the contract asks for ``SSL_CERT_FILE`` or the
    system store instead. ``AWS_CA_BUNDLE`` and ``REQUESTS_CA_BUNDLE`` keep their boto meaning,
    so ``None`` (let botocore decide) is returned when either is set.
    """
    if os.environ.get("AWS_CA_BUNDLE") or os.environ.get("REQUESTS_CA_BUNDLE"):
        return None
    cert_file = os.environ.get("SSL_CERT_FILE")
    if cert_file:
        return cert_file
    system = ssl.get_default_verify_paths()
    for candidate in (system.cafile, system.openssl_cafile):
        if candidate and os.path.isfile(candidate):
            return candidate
    return None


class _FileSlice(io.RawIOBase):
    """A read-only, seekable window ``[start, start + length)`` of a local file.

    It is what botocore streams as a request body: nothing larger than one socket buffer is
    held in memory. It opens its own descriptor and is closed by the worker-thread call that
    made it, so a cancelled upload whose request still runs in the pool never reads from a
    descriptor that was closed (and perhaps reused) under it.
    """

    def __init__(self, path: Path, start: int, length: int, *, stop: threading.Event | None = None) -> None:
        super().__init__()
        self._stop = stop
        self._fd = os.open(path, os.O_RDONLY)
        self._start = start
        self._length = length
        self._position = 0
        #: Set when the request is sent (see S3Provider._before_send), so that the bytes are paced
        #: as they go on the wire; botocore's own payload-hashing pass over plain http is not.
        self.meter: Callable[[float], None] | None = None

    def __len__(self) -> int:
        return self._length

    def as_body(self) -> IO[Any]:
        """This slice, typed as the file object botocore's stubs expect for a request body."""
        return cast("IO[Any]", self)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length}[whence]
        self._position = min(max(0, base + offset), self._length)
        return self._position

    def readinto(self, buffer: Any) -> int:
        if self._stop is not None and self._stop.is_set():
            # The provider is closing: end the request now rather than keep the daemon's
            # shutdown waiting for the rest of a part (the session is resumed on the next start).
            raise OSError("upload interrupted: the provider is closing")
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self._length - self._position)
        if wanted <= 0:
            return 0
        data = os.pread(self._fd, wanted, self._start + self._position)
        view[: len(data)] = data
        self._position += len(data)
        if self.meter is not None and data:
            self.meter(len(data))
        return len(data)


def _hash_range(path: Path, start: int, length: int, whole: Any = None) -> bytes:
    """SHA-256 of ``length`` bytes at ``start``; also feeds ``whole`` (the file's running hash).

    A short read means the file shrank since it was recorded.
    """
    digest = hashlib.sha256()
    offset, end = start, start + length
    with path.open("rb", buffering=0) as reader:
        reader.seek(start)
        while offset < end:
            block = reader.read(min(_READ_BLOCK, end - offset))
            if not block:
                raise FileChangedError(f"file changed during upload: shorter than the recorded {end} bytes")
            digest.update(block)
            if whole is not None:
                whole.update(block)
            offset += len(block)
    return digest.digest()


@dataclass(frozen=True)
class _Fingerprint:
    """What tells us a file was rewritten or replaced while we read it."""

    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> _Fingerprint:
        status = path.stat()
        return cls(status.st_ino, status.st_size, status.st_mtime_ns)


class S3Provider:
    """A bucket (and key prefix) as a mirror target. Keys are the remote paths, unchanged."""

    case_insensitive = False

    def __init__(
        self,
        config: S3Target,
        *,
        concurrency: int = 4,
        multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
        part_size: int = DEFAULT_PART_SIZE,
        session: boto3.Session | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 120.0,
    ) -> None:
        if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise ValueError(f"part_size must be between {MIN_PART_SIZE} and {MAX_PART_SIZE} bytes")
        if not 1 <= multipart_threshold <= MAX_PART_SIZE:
            raise ValueError(f"multipart_threshold must be between 1 and {MAX_PART_SIZE} bytes")
        self.name = config.name
        self.bucket = config.bucket
        self.prefix = normalise_prefix(config.prefix)
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        session = session or boto3.Session()
        verify = str(config.ca_bundle.expanduser()) if config.ca_bundle else None
        if verify is not None and not os.path.isfile(verify):
            raise ValueError(f"target {self.name!r}: ca_bundle {verify} is not a file")
        # An AWS profile's own ca_bundle (or AWS_CA_BUNDLE) wins over our default trust, as in
        # every other AWS tool; only the botocore session knows about the profile's setting.
        if verify is None and session._session.get_config_variable("ca_bundle") is None:
            verify = _default_trust()
        botocore_config = Config(
            # One attempt per call: the daemon owns the retry policy. In client config botocore's
            # "max_attempts" counts *retries* (1 would mean two requests); "total_max_attempts"
            # counts requests.
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=max(10, concurrency),
            tcp_keepalive=True,
        )
        # One client for all workers: botocore clients are thread-safe, sessions are not.
        self.client: S3Client = session.client(
            "s3",
            region_name=config.region,
            endpoint_url=config.endpoint_url,
            verify=verify,
            config=botocore_config,
        )
        self._closing = threading.Event()
        self._pacing = TargetPacing.for_target(config)
        if self._pacing.requests.limited or self._pacing.bandwidth.limited:
            self.client.meta.events.register("before-send.s3", self._before_send)
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=f"s3-{self.name}")

    def _before_send(self, request: Any, **_: Any) -> None:
        """Take one request token per HTTP request and pace upload bodies to the bandwidth limit.

        botocore emits this in the worker thread right before each request goes on the wire
        (every page of a paginated call included), so blocking here throttles exactly that.
        """
        self._pacing.requests.acquire()
        body = getattr(request, "body", None)
        if isinstance(body, _FileSlice):
            body.meter = self._pacing.bandwidth.acquire

    # -- naming ---------------------------------------------------------------------------

    def remote_name(self, remote_path: str) -> str:
        return remote_path

    def key_for(self, remote_path: str) -> str:
        """The object key: the normalised prefix joined with the remote path."""
        key = self.prefix + remote_path.lstrip("/")
        try:
            encoded = key.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise PermanentError(f"S3 keys must be UTF-8; {remote_path!r} is not") from exc
        if len(encoded) > MAX_KEY_BYTES:
            raise PermanentError(f"S3 key is {len(encoded)} bytes, over S3's limit of {MAX_KEY_BYTES}: {key[:80]}...")
        return key

    def _cloud_path(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    # -- plumbing -------------------------------------------------------------------------

    async def _call(self, where: str, function: Callable[[], T]) -> T:
        """Run a blocking call in the target's bounded pool, translating its failures."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, function)
        except (BotoCoreError, ClientError, OSError) as exc:
            raise translate_error(exc, where) from exc

    # -- upload ---------------------------------------------------------------------------

    async def upload(self, job: UploadJob, save_state: SaveState) -> UploadResult:
        key = self.key_for(job.remote_path)
        where = f"upload to {self._cloud_path(key)}"
        try:
            before = await self._call(where, lambda: _Fingerprint.of(job.local_file))
        except PermanentError:
            if job.resume_state:
                await self._abandon_quietly(job.resume_state, save_state)
            raise
        if before.size != job.size:
            if job.resume_state:
                await self._abandon_quietly(job.resume_state, save_state)
            raise FileChangedError(f"file changed since it was recorded: {before.size} bytes, not {job.size}")
        if job.size < self.multipart_threshold:
            if job.resume_state:
                await self._abandon_quietly(job.resume_state, save_state)
            return await self._put_single(job, key, before)
        return await self._put_multipart(job, key, before, save_state)

    async def _ensure_unchanged(self, job: UploadJob, before: _Fingerprint) -> None:
        """Raise FileChangedError when the file was rewritten or replaced since ``before``."""
        try:
            after = await self._call("stat", lambda: _Fingerprint.of(job.local_file))
        except PermanentError as exc:
            raise FileChangedError(f"file changed during upload: {exc}") from exc
        if after != before:
            raise FileChangedError("file changed during upload (size, mtime or inode differs)")

    async def _put_single(self, job: UploadJob, key: str, before: _Fingerprint) -> UploadResult:
        where = f"PutObject {self._cloud_path(key)}"
        digest = await self._call(where, lambda: _hash_range(job.local_file, 0, job.size))
        if digest.hex() != job.sha256:
            raise FileChangedError("file changed since it was recorded (sha256 differs)")
        checksum = _b64(digest)

        def put() -> PutObjectOutputTypeDef:
            with _FileSlice(job.local_file, 0, job.size, stop=self._closing) as body:
                return self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body.as_body(),
                    ContentLength=job.size,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=checksum,
                )

        try:
            written = await self._call(where, put)
        except ProviderError:
            # A file that changed mid-read fails the request; say so rather than blame S3.
            await self._ensure_unchanged(job, before)
            raise
        await self._ensure_unchanged(job, before)
        return await self._verify(key, job.size, full=checksum, composite=None, written=dict(written))

    async def _put_multipart(
        self, job: UploadJob, key: str, before: _Fingerprint, save_state: SaveState
    ) -> UploadResult:
        session = await self._resume_session(job, key, save_state)
        if session is None:
            part_size = part_size_for(job.size, self.part_size)
            created = await self._call(
                f"CreateMultipartUpload {self._cloud_path(key)}",
                lambda: self.client.create_multipart_upload(Bucket=self.bucket, Key=key, ChecksumAlgorithm="SHA256"),
            )
            session = _Session(created["UploadId"], key, part_size, existing={})
        state: dict[str, Any] = {
            "bucket": self.bucket,
            "upload_id": session.upload_id,
            "key": key,
            "part_size": session.part_size,
            "size": job.size,
            "sha256": job.sha256,
            "parts": [],
        }
        try:
            await save_state(dict(state))
            parts, digests, whole = await self._send_parts(job, session, state, save_state)
            if whole != job.sha256:
                raise FileChangedError("file changed since it was recorded (sha256 differs)")
            await self._ensure_unchanged(job, before)
            written = await self._call(
                f"CompleteMultipartUpload {self._cloud_path(key)}",
                lambda: self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=session.upload_id,
                    MultipartUpload={"Parts": parts},
                ),
            )
        except asyncio.CancelledError:
            # The daemon is stopping: keep the session so that the next start resumes it (or
            # abandons it through abandon()); aborting here would throw the parts away.
            raise
        except Exception as exc:
            # Anything else ends this attempt: abort so that no parts stay behind (and are billed).
            await self._abort(key, session.upload_id)
            try:
                await save_state(None)
            except Exception:
                # A stale session in the ledger is harmless: resuming it meets NoSuchUpload.
                log.warning("could not clear the saved session of %s", self._cloud_path(key), exc_info=True)
            if not isinstance(exc, FileChangedError):
                await self._ensure_unchanged(job, before)
            if isinstance(exc, ProviderError):
                raise
            raise translate_error(exc, f"multipart upload to {self._cloud_path(key)}") from exc
        await save_state(None)
        whole_b64 = _b64(bytes.fromhex(whole))
        return await self._verify(key, job.size, full=whole_b64, composite=(digests, len(parts)), written=dict(written))

    async def _send_parts(
        self,
        job: UploadJob,
        session: _Session,
        state: dict[str, Any],
        save_state: SaveState,
    ) -> tuple[list[CompletedPartTypeDef], list[bytes], str]:
        """Hash every part, upload those S3 does not already hold, and save progress after each."""
        whole = hashlib.sha256()
        parts: list[CompletedPartTypeDef] = []
        digests: list[bytes] = []
        count = max(1, math.ceil(job.size / session.part_size))
        for number in range(1, count + 1):
            start = (number - 1) * session.part_size
            length = min(session.part_size, job.size - start)
            digest = await self._call(
                f"read {job.local_file}", functools.partial(_hash_range, job.local_file, start, length, whole)
            )
            checksum = _b64(digest)
            etag = session.existing.get((number, checksum, length))
            if etag is None:
                etag = await self._upload_part(job.local_file, session, number, start, length, checksum)
            parts.append({"PartNumber": number, "ETag": etag, "ChecksumSHA256": checksum})
            digests.append(digest)
            state["parts"] = [dict(part) for part in parts]
            await save_state(dict(state))
        return parts, digests, whole.hexdigest()

    async def _upload_part(
        self, path: Path, session: _Session, number: int, start: int, length: int, checksum: str
    ) -> str:
        def send() -> str:
            with _FileSlice(path, start, length, stop=self._closing) as body:
                return self.client.upload_part(
                    Bucket=self.bucket,
                    Key=session.key,
                    UploadId=session.upload_id,
                    PartNumber=number,
                    Body=body.as_body(),
                    ContentLength=length,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=checksum,
                )["ETag"]

        return await self._call(f"UploadPart {number} of {self._cloud_path(session.key)}", send)

    async def _resume_session(self, job: UploadJob, key: str, save_state: SaveState) -> _Session | None:
        """The saved session if it is still usable, with the parts S3 confirms it holds.

        A part counts as held when ListParts shows it with the checksum we compute now (or,
        for stores whose ListParts omits checksums, with the ETag and checksum we saved when S3
        accepted it); anything else is uploaded again. A session that cannot be used is
        aborted so that its parts are not left behind.
        """
        state = job.resume_state
        if not state:
            return None
        usable = (
            state.get("bucket", self.bucket) == self.bucket
            and state.get("key") == key
            and state.get("sha256", job.sha256) == job.sha256
            and isinstance(state.get("part_size"), int)
            and MIN_PART_SIZE <= state["part_size"] <= MAX_PART_SIZE
            and state["part_size"] * MAX_PARTS >= job.size
        )
        if not usable:
            await self._abandon_quietly(state, save_state)
            return None
        upload_id = str(state["upload_id"])
        try:
            listed = await self._list_parts(key, upload_id)
        except ClientError as exc:
            if _error_code(exc) == "NoSuchUpload":
                log.info("saved multipart upload of %s is gone; starting over", self._cloud_path(key))
                await save_state(None)
                return None
            raise translate_error(exc, f"ListParts {self._cloud_path(key)}") from exc
        saved = {
            int(part["PartNumber"]): (str(part.get("ETag")), str(part.get("ChecksumSHA256")))
            for part in state.get("parts") or []
        }
        existing: dict[tuple[int, str, int], str] = {}
        for part in listed:
            number, etag, size = int(part["PartNumber"]), str(part["ETag"]), int(part["Size"])
            checksum = part.get("ChecksumSHA256")
            if checksum is None and saved.get(number, ("", ""))[0] == etag:
                checksum = saved[number][1]
            if checksum:
                existing[(number, str(checksum), size)] = etag
        return _Session(upload_id, key, int(state["part_size"]), existing)

    async def _list_parts(self, key: str, upload_id: str) -> list[dict[str, Any]]:
        """Every part of the upload (ListParts pages at 1,000); raw ClientError for the caller."""
        paginator = self.client.get_paginator("list_parts")

        def collect() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            for page in paginator.paginate(Bucket=self.bucket, Key=key, UploadId=upload_id):
                found.extend(dict(part) for part in page.get("Parts", []))
            return found

        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, collect)
        except ClientError:
            raise
        except (BotoCoreError, OSError) as exc:
            raise translate_error(exc, f"ListParts {self._cloud_path(key)}") from exc

    async def _abort(self, key: str, upload_id: str, bucket: str | None = None) -> None:
        """Best-effort abort after a failure: the original error is what the caller reports."""
        try:
            await self._abort_upload(bucket or self.bucket, key, upload_id)
        except ProviderError as exc:
            log.warning("could not abort multipart upload %s of %s: %s", upload_id, key, exc)

    async def _abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(
                self._executor,
                lambda: self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id),
            )
        except ClientError as exc:
            if _error_code(exc) == "NoSuchUpload":
                return  # already completed, aborted or expired: nothing is left behind
            raise translate_error(exc, f"AbortMultipartUpload s3://{bucket}/{key}") from exc
        except (BotoCoreError, OSError) as exc:
            raise translate_error(exc, f"AbortMultipartUpload s3://{bucket}/{key}") from exc

    async def _abandon_quietly(self, state: dict[str, Any], save_state: SaveState) -> None:
        """Drop a saved session we will not use, aborting it so that no parts stay behind."""
        if state.get("upload_id") and state.get("key"):
            await self._abort(str(state["key"]), str(state["upload_id"]), state.get("bucket"))
        await save_state(None)

    # -- verification ---------------------------------------------------------------------

    async def _verify(
        self,
        key: str,
        size: int,
        *,
        full: str,
        composite: tuple[list[bytes], int] | None,
        written: Mapping[str, Any],
    ) -> UploadResult:
        """Compare what S3 stored with what we sent: size, and its SHA-256 (full or composite).

        ``written`` is S3's answer to the PutObject/CompleteMultipartUpload. Write-only
        credentials (s3:PutObject without s3:GetObject, common for backup targets) are refused
        HeadObject; then that answer, which carries the checksum S3 validated on receipt, is
        what we verify instead of failing every upload.
        """
        head = await self._head(key, on_denied={**written, "ContentLength": size})
        if head is None:
            raise TransientError(f"{self._cloud_path(key)} is missing right after its upload")
        remote_size = int(head["ContentLength"])
        if remote_size != size:
            raise TransientError(f"{self._cloud_path(key)} holds {remote_size} bytes, not {size}")
        reported = head.get("ChecksumSHA256")
        if reported is None:
            # An S3-compatible store that keeps no checksums: every byte was acknowledged.
            return self._result(key, head, remote_hash=None, verification="transport")
        value, _, suffix = str(reported).partition("-")
        matches = value == full and not suffix
        if composite is not None and not matches:
            digests, count = composite
            # S3 reports "<b64>-<parts>"; some compatible stores omit the part count.
            matches = value == composite_sha256(digests) and suffix in ("", str(count))
        if not matches:
            raise TransientError(f"{self._cloud_path(key)}: S3 reports sha256 {reported}, the local bytes give {full}")
        return self._result(key, head, remote_hash=f"sha256:{reported}", verification="hash")

    def _result(
        self, key: str, head: Mapping[str, Any], *, remote_hash: str | None, verification: Verification
    ) -> UploadResult:
        return UploadResult(
            cloud_path=self._cloud_path(key),
            remote_id=_remote_id(head),
            remote_size=int(head["ContentLength"]),
            remote_hash=remote_hash,
            verification=verification,
        )

    async def _head(self, key: str, on_denied: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """HeadObject with checksums, or None when there is no such object (``on_denied`` on 403)."""
        loop = asyncio.get_running_loop()
        try:
            answer = await loop.run_in_executor(
                self._executor,
                lambda: self.client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED"),
            )
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND_CODES:
                return None
            if on_denied is not None and exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 403:
                log.debug("HeadObject %s denied; verifying S3's answer to the upload", self._cloud_path(key))
                return on_denied
            raise translate_error(exc, f"HeadObject {self._cloud_path(key)}") from exc
        except (BotoCoreError, OSError) as exc:
            raise translate_error(exc, f"HeadObject {self._cloud_path(key)}") from exc
        return dict(answer)

    # -- the rest of the protocol ---------------------------------------------------------

    async def stat(self, remote_path: str) -> RemoteFile | None:
        key = self.key_for(remote_path)
        head = await self._head(key)
        if head is None:
            return None
        hashes: dict[str, str] = {}
        checksum = head.get("ChecksumSHA256")
        if checksum:
            etag = str(head.get("ETag", "")).strip('"')
            if "-" in checksum or "-" in etag or head.get("ChecksumType") == "COMPOSITE":
                hashes["sha256-composite"] = checksum
            else:
                # Hex, like the ledger's content_sha256, so the daemon can compare directly.
                hashes["sha256"] = base64.b64decode(checksum).hex()
        return RemoteFile(
            cloud_path=self._cloud_path(key),
            remote_id=_remote_id(head),
            size=int(head["ContentLength"]),
            hashes=hashes,
        )

    async def read(self, remote_path: str) -> bytes:
        key = self.key_for(remote_path)

        def fetch() -> bytes:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                return body.read()
            finally:
                body.close()

        return await self._call(f"GetObject {self._cloud_path(key)}", fetch)

    async def abandon(self, resume_state: dict[str, Any]) -> None:
        upload_id, key = resume_state.get("upload_id"), resume_state.get("key")
        if upload_id and key:
            await self._abort_upload(str(resume_state.get("bucket") or self.bucket), str(key), str(upload_id))

    async def close(self) -> None:
        """Stop queued work, interrupt request bodies still streaming, wait for the pool, close.

        The daemon cancels its uploads before closing; their threads may still be sending a
        part. Interrupting the body keeps shutdown short, and a multipart session left this way
        is resumed (or abandoned) from its saved state.
        """
        self._closing.set()
        self._pacing.close()  # throttled threads wake at once
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
        self.client.close()


@dataclass(frozen=True)
class _Session:
    """A multipart upload in progress; ``existing`` maps (part, sha256, size) to S3's ETag."""

    upload_id: str
    key: str
    part_size: int
    existing: dict[tuple[int, str, int], str]


def _remote_id(head: Mapping[str, Any]) -> str | None:
    """The object's VersionId on a versioned bucket, else its ETag (without the quotes)."""
    version = head.get("VersionId")
    if version and version != "null":
        return str(version)
    etag = head.get("ETag")
    return str(etag).strip('"') if etag else None
