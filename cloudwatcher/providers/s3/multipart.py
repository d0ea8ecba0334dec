"""Multipart uploads whose session is saved after every part, so that a restarted daemon resumes it.

Checksums (composite for multipart SHA-256):
https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential

from cloudwatcher.providers.base import (
    FileChangedError,
    ProviderError,
    SaveState,
    TransientError,
    UploadJob,
    UploadResult,
)
from cloudwatcher.providers.s3.body import FileSlice, Fingerprint, b64, hash_range
from cloudwatcher.providers.s3.client import S3Base
from cloudwatcher.providers.s3.errors import error_code, translate_error
from cloudwatcher.providers.s3.etag import HashTee, multipart_etag, new_md5
from cloudwatcher.providers.s3.limits import MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE, part_size_for

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

log = logging.getLogger(__name__)

#: Tries of one part within an attempt. A 5xx or SlowDown on part N must not cost parts 1..N-1:
#: the part is sent again; only once its tries are spent does the attempt end (keeping the
#: session, which the next attempt resumes).
PART_ATTEMPTS = 4
_PART_MAX_WAIT = 10.0  # a longer Retry-After ends the attempt: the daemon's schedule waits it out
_PART_BACKOFF = wait_exponential(multiplier=0.5, max=_PART_MAX_WAIT)


def _part_worth_retrying(error: BaseException) -> bool:
    return isinstance(error, TransientError) and (error.retry_after or 0.0) <= _PART_MAX_WAIT


def _part_retry_wait(retry_state: RetryCallState) -> float:
    """Backoff between tries of a part, never shorter than the server's ``Retry-After``."""
    error = retry_state.outcome.exception() if retry_state.outcome is not None else None
    hint = error.retry_after if isinstance(error, TransientError) and error.retry_after else 0.0
    return max(_PART_BACKOFF(retry_state), hint)


@dataclass(frozen=True)
class MultipartSession:
    """A multipart upload in progress; ``existing`` maps (part, sha256, size) to S3's ETag."""

    upload_id: str
    key: str
    part_size: int
    existing: dict[tuple[int, str, int], str]


class MultipartUploads(S3Base):
    """The multipart half of the S3 provider (from ``multipart_threshold`` on)."""

    async def _put_multipart(
        self, job: UploadJob, key: str, before: Fingerprint, save_state: SaveState
    ) -> UploadResult:
        session = await self._resume_session(job, key, save_state)
        if session is None:
            part_size = part_size_for(job.size, self.part_size)
            created = await self._call(
                f"CreateMultipartUpload {self._cloud_path(key)}",
                lambda: self.client.create_multipart_upload(Bucket=self.bucket, Key=key, ChecksumAlgorithm="SHA256"),
            )
            session = MultipartSession(created["UploadId"], key, part_size, existing={})
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
            parts, digests, md5s, whole = await self._send_parts(job, session, state, save_state)
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
        except TransientError as exc:
            if not await self._changed_since(job, before):
                # S3's trouble, not the file's: keep the session (saved in the ledger, aborted if
                # the row gives up) so that the next attempt sends only the parts still missing.
                # A quick retry in this process reuses this job: hand it the session too.
                job.resume_state = dict(state)
                raise
            await self._abort_and_forget(key, session.upload_id, save_state)
            raise FileChangedError(f"file changed during upload: {exc}") from exc
        except Exception as exc:
            # A permanent error or a changed file ends this upload: abort so that no parts stay
            # behind (and are billed).
            await self._abort_and_forget(key, session.upload_id, save_state)
            if not isinstance(exc, FileChangedError):
                await self._ensure_unchanged(job, before)
            if isinstance(exc, ProviderError):
                raise
            raise translate_error(exc, f"multipart upload to {self._cloud_path(key)}") from exc
        await save_state(None)
        whole_b64 = b64(bytes.fromhex(whole))
        return await self._verify(
            key,
            job.size,
            full=whole_b64,
            composite=(digests, len(parts)),
            etag=multipart_etag(md5s),
            written=dict(written),
        )

    async def _send_parts(
        self,
        job: UploadJob,
        session: MultipartSession,
        state: dict[str, Any],
        save_state: SaveState,
    ) -> tuple[list[CompletedPartTypeDef], list[bytes], list[bytes], str]:
        """Hash every part, upload those S3 does not already hold, and save progress after each.

        Returns the parts, their SHA-256 and MD5 digests, and the whole file's SHA-256 (hex).
        """
        whole = hashlib.sha256()
        parts: list[CompletedPartTypeDef] = []
        digests: list[bytes] = []
        md5s: list[bytes] = []
        count = max(1, math.ceil(job.size / session.part_size))
        for number in range(1, count + 1):
            start = (number - 1) * session.part_size
            length = min(session.part_size, job.size - start)
            md5 = new_md5()
            digest = await self._call(
                f"read {job.local_file}",
                functools.partial(hash_range, job.open_local, start, length, HashTee(whole, md5)),
            )
            checksum = b64(digest)
            etag = session.existing.get((number, checksum, length))
            if etag is None:
                etag = await self._upload_part(
                    job.open_local, session, number, start, length, checksum, b64(md5.digest())
                )
            parts.append({"PartNumber": number, "ETag": etag, "ChecksumSHA256": checksum})
            digests.append(digest)
            md5s.append(md5.digest())
            state["parts"] = [dict(part) for part in parts]
            await save_state(dict(state))
        return parts, digests, md5s, whole.hexdigest()

    async def _upload_part(
        self,
        open_file: Callable[[], int],
        session: MultipartSession,
        number: int,
        start: int,
        length: int,
        checksum: str,
        content_md5: str,
    ) -> str:
        def send() -> str:
            with FileSlice(open_file, start, length, stop=self._closing) as body:
                return self.client.upload_part(
                    Bucket=self.bucket,
                    Key=session.key,
                    UploadId=session.upload_id,
                    PartNumber=number,
                    Body=body.as_body(),
                    ContentLength=length,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=checksum,
                    ContentMD5=content_md5,  # checked on receipt by stores that keep no SHA-256
                )["ETag"]

        where = f"UploadPart {number} of {self._cloud_path(session.key)}"
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(PART_ATTEMPTS),
            wait=_part_retry_wait,
            retry=retry_if_exception(_part_worth_retrying),
            reraise=True,
        ):
            with attempt:
                etag = await self._call(where, send)
        return etag

    async def _changed_since(self, job: UploadJob, before: Fingerprint) -> bool:
        try:
            await self._ensure_unchanged(job, before)
        except FileChangedError:
            return True
        return False

    async def _abort_and_forget(self, key: str, upload_id: str, save_state: SaveState) -> None:
        """Abort the upload (no parts left behind) and clear its saved session."""
        await self._abort(key, upload_id)
        try:
            await save_state(None)
        except Exception:
            # A stale session in the ledger is harmless: resuming it meets NoSuchUpload.
            log.warning("could not clear the saved session of %s", self._cloud_path(key), exc_info=True)

    async def _resume_session(self, job: UploadJob, key: str, save_state: SaveState) -> MultipartSession | None:
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
            if error_code(exc) == "NoSuchUpload":
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
        return MultipartSession(upload_id, key, int(state["part_size"]), existing)

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

    async def _abandon_quietly(self, state: dict[str, Any], save_state: SaveState) -> None:
        """Drop a saved session we will not use, aborting it so that no parts stay behind."""
        if state.get("upload_id") and state.get("key"):
            await self._abort(str(state["key"]), str(state["upload_id"]), state.get("bucket"))
        await save_state(None)
