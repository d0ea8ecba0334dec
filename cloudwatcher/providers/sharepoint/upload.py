"""Uploads: a simple PUT up to 4 MiB (an upload session above, see session.py); quickXorHash checks."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from kiota_abstractions.method import Method

from cloudwatcher.providers.base import (
    FileChangedError,
    PermanentError,
    SaveState,
    TransientError,
    UploadJob,
    UploadResult,
)
from cloudwatcher.providers.sharepoint.errors import QuickXorMismatchError, status_of
from cloudwatcher.providers.sharepoint.items import DriveItem, send_json
from cloudwatcher.providers.sharepoint.quickxorhash import QuickXorHash
from cloudwatcher.providers.sharepoint.session import READ_CHUNK, GraphSessions, Transfer, read_up_to

log = logging.getLogger(__name__)

SIMPLE_UPLOAD_LIMIT = 4 * 1024 * 1024  # older clouds cap simple PUTs at 4 MB


class GraphUploads(GraphSessions):
    """The upload half of the provider."""

    # ------------------------------------------------------------------------------- upload

    async def upload(self, job: UploadJob, save_state: SaveState) -> UploadResult:
        segments = self._segments(job.remote_path)
        drive_id = await self._drive()
        try:
            for attempt in (1, 2):
                parent_id = await self._folder(drive_id, segments[:-1])
                try:
                    item, quickxor, sha256, landed = await self._transfer(
                        drive_id, parent_id, segments, job, save_state
                    )
                    break
                except TransientError as exc:
                    if attempt == 2 or status_of(exc.__cause__) != 404:
                        raise
                    # A cached folder id went stale (the folder was deleted or moved remotely).
                    log.info("%s: parent folder of %s vanished; re-resolving", self.name, segments[-1])
                    self._folder_ids.clear()
        except FileNotFoundError as exc:
            raise PermanentError(f"local file vanished: {job.local_file}") from exc
        except OSError as exc:
            raise TransientError(f"cannot read {job.local_file}: {exc.strerror or exc}") from exc
        if sha256 != job.sha256:
            raise FileChangedError("file changed since it was recorded (sha256 differs)")
        return self._verified("/".join(segments), item, quickxor, job.size, landed=landed)

    async def _transfer(
        self, drive_id: str, parent_id: str, segments: list[str], job: UploadJob, save_state: SaveState
    ) -> Transfer:
        """Simple PUT up to 4 MiB, an upload session above; True when ``item`` holds this upload's bytes."""
        if job.size > SIMPLE_UPLOAD_LIMIT:
            return await self._session_upload(drive_id, parent_id, segments, job, save_state)
        if (job.resume_state or {}).get("upload_url"):
            # Sessions are only started for larger files: this one changed; drop its session.
            await self._forget(job.resume_state or {}, save_state)
        return await self._simple_upload(drive_id, parent_id, segments[-1], job)

    def _verified(
        self, cloud_path: str, item: DriveItem, quickxor: QuickXorHash, size: int, *, landed: bool
    ) -> UploadResult:
        """Compare SharePoint's quickXorHash with the one taken of the bytes as they were sent.

        ``item`` holds this upload (``landed``) when SharePoint acknowledged every byte and
        answered with it, or, the final answer lost, when the item looked up afterwards was
        written since the upload started (:func:`_written_since`). Then a different hash is the
        library's own rewrite, whatever the file type or size (Office documents, PDF, HTML,
        images whose metadata it touches, and whatever else a library's policies change): the
        copy is ``server-modified``, synced and never uploaded again in a loop. Otherwise the
        item is an older version and the mismatch is an error, retried.
        """
        reported = item.quick_xor_hash
        local = quickxor.b64digest()
        if reported is None:
            verification, remote_hash = "transport", None
        else:
            try:
                matches = base64.b64decode(reported) == quickxor.digest()
            except (binascii.Error, ValueError):
                matches = False
            if matches:
                verification = "hash"
            elif landed:
                verification = "server-modified"
                log.info(
                    "%s: SharePoint rewrote %s on upload (%s bytes sent, %s stored)",
                    self.name,
                    cloud_path,
                    size,
                    item.size,
                )
            else:
                raise QuickXorMismatchError(
                    f"SharePoint reports quickXorHash {reported} for {cloud_path}, an older version (last"
                    f" modified {item.last_modified}); the bytes sent hash to {local}"
                )
            remote_hash = f"quickxor:{reported}"
        return UploadResult(
            cloud_path=cloud_path,
            remote_id=item.id,
            remote_size=item.size if item.size is not None else size,
            remote_hash=remote_hash,
            verification=verification,  # type: ignore[arg-type]
        )

    async def _simple_upload(self, drive_id: str, parent_id: str, name: str, job: UploadJob) -> Transfer:
        """One PUT .../content, streamed from disk, hashing the bytes as they go out."""
        url = self._url(drive_id, [name], anchor=f"items/{quote(parent_id, safe='')}", suffix="/content")
        hashes: list[tuple[QuickXorHash, Any]] = []

        async def stream() -> AsyncIterator[bytes]:
            quickxor, sha256 = QuickXorHash(), hashlib.sha256()
            hashes.append((quickxor, sha256))
            sent = 0
            with os.fdopen(job.open_local(), "rb") as reader:
                while sent < job.size:
                    chunk = await asyncio.to_thread(read_up_to, reader, min(READ_CHUNK, job.size - sent))
                    if not chunk:
                        raise FileChangedError(f"file shrank during upload: {sent} of {job.size} bytes")
                    quickxor.update(chunk)
                    sha256.update(chunk)
                    sent += len(chunk)
                    if sent == job.size and sha256.hexdigest() != job.sha256:
                        raise FileChangedError("file changed since it was recorded (sha256 differs); not sent")
                    await self._pace_bytes(len(chunk))
                    yield chunk

        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(job.size)}
        answer = await self._call(
            lambda: send_json(self._adapter, Method.PUT, url, headers=headers, content=stream())  # httpx streams it
        )
        item = DriveItem.from_json(answer or {})
        if not item.id or not hashes:
            raise TransientError("SharePoint answered the upload without a driveItem")
        quickxor, sha256 = hashes[-1]
        return item, quickxor, sha256.hexdigest(), True
