"""The S3 provider: one ``PutObject`` for small files, a resumable multipart upload for the rest."""

from __future__ import annotations

import asyncio
import base64
from typing import TYPE_CHECKING, Any

from cloudwatcher.providers.base import (
    FileChangedError,
    PermanentError,
    ProviderError,
    RemoteFile,
    SaveState,
    UploadJob,
    UploadResult,
)
from cloudwatcher.providers.s3.body import FileSlice, Fingerprint, b64, hash_range
from cloudwatcher.providers.s3.client import remote_id_of
from cloudwatcher.providers.s3.etag import new_md5, single_part_etag
from cloudwatcher.providers.s3.multipart import MultipartUploads

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import PutObjectOutputTypeDef


class S3Provider(MultipartUploads):
    """A bucket (and key prefix) as a mirror target. Keys are the remote paths, unchanged."""

    # -- upload ---------------------------------------------------------------------------

    async def upload(self, job: UploadJob, save_state: SaveState) -> UploadResult:
        key = self.key_for(job.remote_path)
        where = f"upload to {self._cloud_path(key)}"
        try:
            before = await self._call(where, lambda: Fingerprint.of(job.local_file))
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

    async def _put_single(self, job: UploadJob, key: str, before: Fingerprint) -> UploadResult:
        where = f"PutObject {self._cloud_path(key)}"
        md5 = new_md5()
        digest = await self._call(where, lambda: hash_range(job.open_local, 0, job.size, md5))
        if digest.hex() != job.sha256:
            raise FileChangedError("file changed since it was recorded (sha256 differs)")
        checksum = b64(digest)
        md5_digest = md5.digest()

        def put() -> PutObjectOutputTypeDef:
            with FileSlice(job.open_local, 0, job.size, stop=self._closing) as body:
                return self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body.as_body(),
                    ContentLength=job.size,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=checksum,
                    ContentMD5=b64(md5_digest),  # checked on receipt by stores that keep no SHA-256
                )

        try:
            written = await self._call(where, put)
        except ProviderError:
            # A file that changed mid-read fails the request; say so rather than blame S3.
            await self._ensure_unchanged(job, before)
            raise
        await self._ensure_unchanged(job, before)
        return await self._verify(
            key, job.size, full=checksum, composite=None, etag=single_part_etag(md5_digest), written=dict(written)
        )

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
            remote_id=remote_id_of(head),
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

    async def remove(self, remote_path: str) -> None:
        """Delete one object (``cloudwatcher check``'s probe); S3 answers 204 even when none was there."""
        key = self.key_for(remote_path)
        await self._call(
            f"DeleteObject {self._cloud_path(key)}", lambda: self.client.delete_object(Bucket=self.bucket, Key=key)
        )

    async def abandon(self, resume_state: dict[str, Any]) -> None:
        upload_id, key = resume_state.get("upload_id"), resume_state.get("key")
        if upload_id and key:
            await self._abort_upload(str(resume_state.get("bucket") or self.bucket), str(key), str(upload_id))

    async def flush(self) -> None:
        """Nothing to do: an acknowledged upload is already stored by the service."""
        return None

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
