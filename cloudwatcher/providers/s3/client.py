"""The boto3 client of one target in its bounded thread pool: trust, pacing, naming, calls, verification.

The daemon owns the retry policy, so botocore makes exactly one attempt per call and every
failure is mapped to TransientError or PermanentError (see errors.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cloudwatcher.providers.base import (
    FileChangedError,
    PermanentError,
    ProviderError,
    TransientError,
    UploadJob,
    UploadResult,
    Verification,
)
from cloudwatcher.providers.pacing import TargetPacing
from cloudwatcher.providers.s3.body import FileSlice, Fingerprint
from cloudwatcher.providers.s3.config import S3Target
from cloudwatcher.providers.s3.errors import NOT_FOUND_CODES, error_code, translate_error
from cloudwatcher.providers.s3.etag import compare_etag
from cloudwatcher.providers.s3.limits import (
    DEFAULT_MULTIPART_THRESHOLD,
    DEFAULT_PART_SIZE,
    MAX_KEY_BYTES,
    MAX_PART_SIZE,
    MIN_PART_SIZE,
    composite_sha256,
    normalise_prefix,
)
from cloudwatcher.providers.trust import target_trust

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


log = logging.getLogger(__name__)

T = TypeVar("T")


def _aws_names_its_own_bundle(session: boto3.Session) -> bool:
    """Whether ``AWS_CA_BUNDLE``, ``REQUESTS_CA_BUNDLE`` or the AWS profile's ``ca_bundle`` is set.

    They keep their boto meaning, as in every other AWS tool: botocore is then left to decide
    (only the botocore session knows the profile's setting). Otherwise botocore would trust
    certifi's bundle, where the rule asks for ``SSL_CERT_FILE`` or the system store.
    """
    if os.environ.get("AWS_CA_BUNDLE") or os.environ.get("REQUESTS_CA_BUNDLE"):
        return True
    return session._session.get_config_variable("ca_bundle") is not None


class S3Base:
    """A bucket (and key prefix) and the client that reaches it; the layers above add the uploads."""

    case_insensitive = False
    renames_paths = False  # any UTF-8 key is valid

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
        trust = target_trust(config.ca_bundle, target=self.name)
        # The target's ca_bundle first; then an AWS setting of its own; then the common rule.
        verify = trust.configured or (None if _aws_names_its_own_bundle(session) else trust.bundle_file())
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
        if isinstance(body, FileSlice):
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

    async def _ensure_unchanged(self, job: UploadJob, before: Fingerprint) -> None:
        """Raise FileChangedError when the file was rewritten or replaced since ``before``."""
        try:
            after = await self._call("stat", lambda: Fingerprint.of(job.local_file))
        except PermanentError as exc:
            raise FileChangedError(f"file changed during upload: {exc}") from exc
        if after != before:
            raise FileChangedError("file changed during upload (size, mtime or inode differs)")

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
            if error_code(exc) == "NoSuchUpload":
                return  # already completed, aborted or expired: nothing is left behind
            raise translate_error(exc, f"AbortMultipartUpload s3://{bucket}/{key}") from exc
        except (BotoCoreError, OSError) as exc:
            raise translate_error(exc, f"AbortMultipartUpload s3://{bucket}/{key}") from exc

    # -- verification ---------------------------------------------------------------------

    async def _verify(
        self,
        key: str,
        size: int,
        *,
        full: str,
        composite: tuple[list[bytes], int] | None,
        etag: str,
        written: Mapping[str, Any],
    ) -> UploadResult:
        """Compare what S3 stored with what we sent: size, and its SHA-256 (full or composite),
        or where the store returns no checksum, its ETag against ``etag`` (the MD5 one, etag.py).

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
            return self._verify_etag(key, head, etag)
        value, _, suffix = str(reported).partition("-")
        matches = value == full and not suffix
        if composite is not None and not matches:
            digests, count = composite
            # S3 reports "<b64>-<parts>"; some compatible stores omit the part count.
            matches = value == composite_sha256(digests) and suffix in ("", str(count))
        if not matches:
            raise TransientError(f"{self._cloud_path(key)}: S3 reports sha256 {reported}, the local bytes give {full}")
        return self._result(key, head, remote_hash=f"sha256:{reported}", verification="hash")

    def _verify_etag(self, key: str, head: Mapping[str, Any], etag: str) -> UploadResult:
        """A store that returns no checksum: its MD5 ETag, else the Content-MD5 it checked on receipt."""
        verdict = compare_etag(head, etag)
        if verdict == "mismatch":
            raise TransientError(f"{self._cloud_path(key)}: the store reports ETag {head.get('ETag')}, not {etag}")
        if verdict == "match":
            return self._result(key, head, remote_hash=f"md5:{etag}", verification="hash")
        # Not an MD5 of the data (encrypted, or another store's scheme): every body carried its
        # Content-MD5 and SHA-256, which the store checked before acknowledging it.
        return self._result(key, head, remote_hash=None, verification="transport")

    def _result(
        self, key: str, head: Mapping[str, Any], *, remote_hash: str | None, verification: Verification
    ) -> UploadResult:
        return UploadResult(
            cloud_path=self._cloud_path(key),
            remote_id=remote_id_of(head),
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
            if error_code(exc) in NOT_FOUND_CODES:
                return None
            if on_denied is not None and exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 403:
                log.debug("HeadObject %s denied; verifying S3's answer to the upload", self._cloud_path(key))
                return on_denied
            raise translate_error(exc, f"HeadObject {self._cloud_path(key)}") from exc
        except (BotoCoreError, OSError) as exc:
            raise translate_error(exc, f"HeadObject {self._cloud_path(key)}") from exc
        return dict(answer)


def remote_id_of(head: Mapping[str, Any]) -> str | None:
    """The object's VersionId on a versioned bucket, else its ETag (without the quotes)."""
    version = head.get("VersionId")
    if version and version != "null":
        return str(version)
    etag = head.get("ETag")
    return str(etag).strip('"') if etag else None
