"""Upload sessions: createUploadSession, fragments of 320 KiB multiples, resuming and resynchronising.

A session's ``uploadUrl`` is pre-authenticated: its requests go through the second adapter
(anonymous authentication) and never carry the bearer token. The session is saved in the
ledger (``save_state``) with the time it started, so that a restarted daemon resumes it and a
lost final answer can be told apart from an older copy (:func:`_written_since`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import IO, Any
from urllib.parse import quote

from kiota_abstractions.method import Method

from cloudwatcher.providers.base import FileChangedError, SaveState, TransientError, UploadJob
from cloudwatcher.providers.sharepoint.client import GraphBase
from cloudwatcher.providers.sharepoint.errors import status_of
from cloudwatcher.providers.sharepoint.items import JSON, DriveItem, parse_datetime, send_json
from cloudwatcher.providers.sharepoint.quickxorhash import QuickXorHash

log = logging.getLogger(__name__)

FRAGMENT_UNIT = 320 * 1024  # every fragment but the last MUST be a multiple of this
FRAGMENT_SIZE = 10 * FRAGMENT_UNIT
READ_CHUNK = 256 * 1024
_RESYNCS_PER_ATTEMPT = 3  # dropped fragments recovered within one upload attempt
# A throttled fragment waits out a Retry-After up to this long within the attempt (keeping its
# place in the session); a longer one ends the attempt and the daemon's schedule waits.
_MAX_FRAGMENT_WAIT = 10.0
# How far SharePoint's clock may trail ours when its lastModifiedDateTime is compared with the
# time our upload session started (both hosts keep NTP time; the margin covers what remains).
_CLOCK_SKEW = timedelta(seconds=60)

#: What an upload hands back: the item, the quickXorHash and SHA-256 of the bytes sent, and
#: whether the item holds this upload's bytes.
Transfer = tuple[DriveItem, QuickXorHash, str, bool]


def _parse_ranges(ranges: list[str] | None) -> int | None:
    """The next byte the session expects, from ``["N-"]`` or SharePoint's ``["N-M"]``."""
    if not ranges:
        return None
    starts = [int(item.split("-", 1)[0]) for item in ranges if item.split("-", 1)[0].isdigit()]
    return min(starts) if starts else None


def read_into(reader: IO[bytes], buffer: memoryview) -> memoryview:
    """Fill ``buffer`` from ``reader`` (short only at the end of the file); the part filled."""
    filled = 0
    while filled < len(buffer):
        count = reader.readinto(buffer[filled:])  # type: ignore[attr-defined]  # a BufferedReader
        if not count:
            break
        filled += count
    return buffer[:filled]


def read_up_to(reader: IO[bytes], count: int) -> bytes:
    return reader.read(count)


async def _in_pieces(fragment: bytes | memoryview) -> AsyncIterator[bytes]:
    """A fragment as a stream of ``READ_CHUNK`` pieces.

    Handed to httpx as one 3.2 MiB ``bytes`` body, a fragment goes to the TLS layer in a single
    write, whose plaintext and ciphertext buffers kept the daemon's memory about 45 MB higher
    during large uploads (measured with the provider benchmark); pieces keep them small.
    """
    view = memoryview(fragment)
    for start in range(0, len(view), READ_CHUNK):
        yield bytes(view[start : start + READ_CHUNK])


def _started_at(resume_state: dict[str, Any] | None) -> datetime | None:
    """When a saved session was started, if it says so."""
    try:
        started = datetime.fromisoformat(str((resume_state or {})["started"]))
    except (KeyError, ValueError):
        return None
    return started if started.tzinfo is not None else started.replace(tzinfo=UTC)


def _written_since(item: DriveItem, started: datetime | None, sent_size: int) -> bool:
    """Whether ``item``, found after an upload whose final answer was lost, holds that upload.

    SharePoint's ``lastModifiedDateTime`` at or after the session's start (less the clock skew)
    says so. A session saved without its start (by an older version of the daemon) falls back
    on the size: a size other than the one sent is taken for the library's rewrite; the same
    size cannot tell an older copy from ours, so it is not taken.
    """
    modified = item.last_modified
    if modified is not None and started is not None:
        if modified.tzinfo is None:
            modified = modified.replace(tzinfo=UTC)
        return modified >= started - _CLOCK_SKEW
    return item.size is not None and item.size != sent_size


class GraphSessions(GraphBase):
    """Large uploads through resumable upload sessions."""

    async def _pace_bytes(self, count: int) -> None:
        await self._pacing.bandwidth.acquire_async(count)

    async def _create_session(
        self, drive_id: str, parent_id: str, name: str, started: datetime, save_state: SaveState
    ) -> str:
        url = self._url(drive_id, [name], anchor=f"items/{quote(parent_id, safe='')}", suffix="/createUploadSession")
        body = {"item": {"@microsoft.graph.conflictBehavior": "replace"}}
        session = await self._call(lambda: send_json(self._adapter, Method.POST, url, body)) or {}
        upload_url = session.get("uploadUrl")
        if not upload_url:
            raise TransientError("SharePoint answered createUploadSession without an uploadUrl")
        expiration = parse_datetime(session.get("expirationDateTime"))
        expires = expiration.isoformat() if expiration else None
        # "started" tells a later attempt, should the final answer be lost, whether the file it
        # finds was written by this session (see _written_since).
        await save_state({"upload_url": upload_url, "expires": expires, "started": started.isoformat()})
        log.debug("%s: upload session started for %s", self.name, name)
        return str(upload_url)

    async def _upload_request(
        self, method: Method, upload_url: str, fragment: bytes | memoryview = b"", content_range: str = ""
    ) -> JSON | None:
        """One request to the pre-authenticated uploadUrl (no Authorization header)."""
        if method != Method.PUT:
            return await send_json(self._upload_adapter, method, upload_url)
        headers = {
            "Content-Range": content_range,
            "Content-Type": "application/octet-stream",
            "Content-Length": str(len(fragment)),
        }
        return await send_json(self._upload_adapter, method, upload_url, headers=headers, content=_in_pieces(fragment))

    async def _session_offset(self, upload_url: str) -> int | None:
        """Where the session stands (GET uploadUrl); None when it expired or never existed."""
        try:
            state = await self._call(lambda: self._upload_request(Method.GET, upload_url), bearer=False)
        except TransientError as exc:
            if status_of(exc.__cause__) == 404:
                return None
            raise
        return _parse_ranges((state or {}).get("nextExpectedRanges"))

    async def _session_upload(
        self, drive_id: str, parent_id: str, segments: list[str], job: UploadJob, save_state: SaveState
    ) -> Transfer:
        """createUploadSession (or the saved one), then fragments of 10 x 320 KiB, in order."""
        upload_url: str | None = (job.resume_state or {}).get("upload_url")
        started = _started_at(job.resume_state)
        offset: int | None = 0
        if upload_url:
            offset = await self._session_offset(upload_url)
            if offset is None:
                log.info("%s: saved upload session is gone; starting over", self.name)
                await save_state(None)
                upload_url = None
        if not upload_url:
            started = datetime.now(UTC)
            upload_url = await self._create_session(drive_id, parent_id, segments[-1], started, save_state)
            offset = 0
        assert offset is not None
        quickxor, sha256 = QuickXorHash(), hashlib.sha256()
        try:
            with os.fdopen(job.open_local(), "rb") as reader:
                await asyncio.to_thread(self._hash_prefix, reader, offset, quickxor, sha256)
                item = await self._send_fragments(upload_url, reader, offset, job.size, quickxor, sha256, job.sha256)
        except FileChangedError:
            await self._forget({"upload_url": upload_url}, save_state)
            raise
        landed = item is not None
        if item is None:
            # The last answer was lost and the session closed: look the file up, and take it for
            # this upload's only if it was written since the session started. Not uploading
            # again is the point: a library that rewrites the file would differ every time.
            item = await self._item(self._url(drive_id, segments))
            landed = _written_since(item, started, job.size)
        await save_state(None)
        return item, quickxor, sha256.hexdigest(), landed

    @staticmethod
    def _hash_prefix(reader: IO[bytes], count: int, quickxor: QuickXorHash, sha256: Any) -> None:
        """Hash the bytes the server already holds, so the final hash covers the whole file."""
        remaining = count
        while remaining:
            chunk = reader.read(min(READ_CHUNK, remaining))
            if not chunk:
                raise FileChangedError("file shrank below the resumed upload's offset")
            quickxor.update(chunk)
            sha256.update(chunk)
            remaining -= len(chunk)

    async def _send_fragments(
        self,
        upload_url: str,
        reader: IO[bytes],
        offset: int,
        size: int,
        quickxor: QuickXorHash,
        sha256: Any,
        recorded_sha256: str,
    ) -> DriveItem | None:
        resyncs = 0
        # One buffer for every fragment of the upload: a fresh 3.2 MiB bytes per fragment, each
        # allocated in whichever worker thread read it, left the allocator's per-thread arenas
        # holding several megabytes each during large uploads.
        buffer = memoryview(bytearray(min(FRAGMENT_SIZE, size - offset)))
        while offset < size:
            want = min(FRAGMENT_SIZE, size - offset)
            fragment = await asyncio.to_thread(read_into, reader, buffer[:want])
            if len(fragment) != want:
                raise FileChangedError(f"file shrank during upload at byte {offset + len(fragment)}")
            if offset + len(fragment) == size:
                # Graph stores the file when its last fragment arrives: a file swapped or
                # rewritten since it was recorded must fail here, before that fragment is sent.
                whole = sha256.copy()
                whole.update(fragment)
                if whole.hexdigest() != recorded_sha256:
                    raise FileChangedError(
                        "file changed since it was recorded (sha256 differs); last fragment not sent"
                    )
            content_range = f"bytes {offset}-{offset + len(fragment) - 1}/{size}"
            await self._pace_bytes(len(fragment))
            try:
                answer = await self._call(
                    lambda body=fragment, span=content_range: self._upload_request(  # type: ignore[misc]
                        Method.PUT, upload_url, body, span
                    ),
                    bearer=False,
                )
            except TransientError as exc:
                # A dropped connection or a 416: ask the session where it stands and go on from there.
                resyncs += 1
                if resyncs > _RESYNCS_PER_ATTEMPT or (exc.retry_after or 0.0) > _MAX_FRAGMENT_WAIT:
                    raise
                if exc.retry_after:
                    # Throttled (429/503): asking again sooner is throttled again.
                    await asyncio.sleep(exc.retry_after)
                expected = await self._session_offset(upload_url)
                log.info("%s: fragment at %d failed (%s); session expects %s", self.name, offset, exc, expected)
                if expected is None and offset + len(fragment) == size:
                    quickxor.update(fragment)
                    sha256.update(fragment)
                    return None  # the last fragment landed; its answer was lost
                if expected == offset + len(fragment):
                    quickxor.update(fragment)
                    sha256.update(fragment)
                    offset = expected
                elif expected == offset:
                    reader.seek(offset)
                else:
                    raise TransientError(f"upload session lost its place (expects {expected}, sent {offset})") from exc
                continue
            quickxor.update(fragment)
            sha256.update(fragment)
            offset += len(fragment)
            if answer and "id" in answer:
                return DriveItem.from_json(answer)
            expected = _parse_ranges((answer or {}).get("nextExpectedRanges"))
            if expected is not None and expected != offset:
                raise TransientError(f"upload session expects byte {expected}, not {offset}")
        raise TransientError("upload session accepted every byte but returned no driveItem")

    async def _forget(self, resume_state: dict[str, Any], save_state: SaveState) -> None:
        """Cancel a session that will not be finished and clear it from the ledger."""
        try:
            await self.abandon(resume_state)
        finally:
            await save_state(None)

    async def abandon(self, resume_state: dict[str, Any]) -> None:
        upload_url = resume_state.get("upload_url")
        if not upload_url:
            return
        try:
            await self._call(lambda: self._upload_request(Method.DELETE, upload_url), bearer=False)
        except TransientError as exc:
            if status_of(exc.__cause__) != 404:
                raise
