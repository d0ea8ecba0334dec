"""Uploads: multipart for small files, resumable sessions (saved for a restart) for the rest."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from googleapiclient.errors import HttpError

from cloudwatcher.providers.base import (
    FileChangedError,
    PermanentError,
    RemoteFile,
    TransientError,
    UploadJob,
    UploadResult,
)
from cloudwatcher.providers.google_drive.api import FILE_FIELDS, MAX_SESSION_RESYNCS
from cloudwatcher.providers.google_drive.client import DriveBase
from cloudwatcher.providers.google_drive.errors import NETWORK_ERRORS
from cloudwatcher.providers.google_drive.media import HashingMedia

log = logging.getLogger(__name__)
_Save = Callable[[dict[str, Any] | None], None]


class DriveUploads(DriveBase):
    """The upload half of the provider; every method runs in a worker thread."""

    # --- upload ---------------------------------------------------------------------------------

    def _upload_sync(self, job: UploadJob, save: _Save, cancelled: threading.Event) -> UploadResult:
        with self._locks.hold(f"file:{'/'.join(self._split(job.remote_path))}"):
            try:
                return self._upload_once(job, save, cancelled)
            except HttpError as exc:
                # A folder deleted remotely leaves a stale cached id: rebuild the chain once.
                if exc.resp.status != 404 or not self._folders.forget():
                    raise
                return self._upload_once(job, save, cancelled)

    def _upload_once(self, job: UploadJob, save: _Save, cancelled: threading.Event) -> UploadResult:
        check_unchanged(job)
        parts = self._split(job.remote_path)
        parent = self._folder(parts[:-1], create=True)
        assert parent is not None
        existing = self._children(parent, parts[-1], folder=False)
        file_id: str | None = existing[0]["id"] if existing else None
        resumable = job.size > self._multipart_limit or bool(job.resume_state)
        media = HashingMedia(job, self._chunk_size, resumable, self._pacing.bandwidth)
        try:
            if resumable:
                resource = self._send_resumable(job, media, parent, parts[-1], file_id, save, cancelled)
            else:
                resource = self._request(media, parent, parts[-1], file_id).execute(num_retries=0)
            md5, sha256 = media.digests()
        finally:
            media.close()
        check_unchanged(job)
        if sha256 != job.sha256:
            raise FileChangedError("file changed since it was recorded (sha256 differs)")
        return self._verified(job, resource, md5, sha256)

    def _request(self, media: HashingMedia, parent: str, name: str, file_id: str | None) -> Any:
        """files.create into ``parent``, or files.update (PATCH, content only) of ``file_id``."""
        if file_id is None:
            body = {"name": name, "parents": [parent]}
            return self._files().create(body=body, media_body=media, fields=FILE_FIELDS, **self._params())
        return self._files().update(fileId=file_id, media_body=media, fields=FILE_FIELDS, **self._params())

    def _send_resumable(
        self,
        job: UploadJob,
        media: HashingMedia,
        parent: str,
        name: str,
        file_id: str | None,
        save: _Save,
        cancelled: threading.Event,
    ) -> dict[str, Any]:
        state = job.resume_state or {}
        uri, offset = state.get("session_uri"), 0
        recorded = (state.get("size", job.size), state.get("sha256", job.sha256))
        if uri and recorded != (job.size, job.sha256):
            self._abandon_sync(state)  # a session for other content cannot be resumed
            uri = None
        if uri:
            progress = self._session_status(str(uri), job.size)
            if isinstance(progress, dict):
                save(None)
                return progress  # it had completed before the restart
            if progress is None:
                log.info("%s: upload session for %s expired; starting over", self.name, job.remote_path)
                uri = None
            else:
                offset, file_id = progress, state.get("file_id", file_id)
        request = self._request(media, parent, name, file_id)
        if uri:
            request.resumable_uri, request.resumable_progress = uri, offset
        saved, resyncs, last_progress = bool(uri), 0, offset
        response = None
        while response is None:
            if cancelled.is_set():
                raise TransientError("upload interrupted (shutting down); its session is saved")
            try:
                _, response = request.next_chunk(num_retries=0)
            except FileChangedError:
                if request.resumable_uri:  # no orphaned session for content that is gone
                    self._abandon_sync({"session_uri": request.resumable_uri})
                    save(None)
                raise
            except (HttpError, *NETWORK_ERRORS, OSError) as exc:
                if request.resumable_uri is None:
                    raise
                if not saved:
                    save(session_state(request.resumable_uri, file_id, job))
                    saved = True
                if isinstance(exc, HttpError) and exc.resp.status in (404, 410):
                    save(None)
                    raise TransientError("the upload session expired; the next attempt starts over") from exc
                retryable = not isinstance(exc, HttpError) or exc.resp.status in (400, 416)
                resyncs = 0 if request.resumable_progress > last_progress else resyncs + 1
                last_progress = request.resumable_progress
                if not retryable or resyncs > MAX_SESSION_RESYNCS:
                    raise
                # The library is now in its error state: next_chunk first asks the session
                # where it stands (PUT bytes */total) and continues from the reported offset.
                continue
            if not saved and request.resumable_uri:
                save(session_state(request.resumable_uri, file_id, job))
                saved = True
        save(None)
        return dict(response)

    def _session_status(self, uri: str, size: int) -> dict[str, Any] | int | None:
        """Ask a saved session where it stands: the file (complete), the next offset, or None
        when Drive no longer knows it (404/410: start over)."""
        response, content = self._http().request(
            uri, "PUT", body=b"", headers={"Content-Range": f"bytes */{size}", "Content-Length": "0"}
        )
        if response.status in (200, 201):
            return dict(json.loads(content))
        if response.status == 308:
            received = response.get("range")
            return int(received.rsplit("-", 1)[1]) + 1 if received else 0
        if response.status in (404, 410):
            return None
        raise HttpError(response, content, uri=uri)

    def _verified(self, job: UploadJob, resource: dict[str, Any], md5: str, sha256: str) -> UploadResult:
        remote_size = int(resource["size"]) if "size" in resource else None
        remote_md5 = resource.get("md5Checksum")
        remote_sha256 = resource.get("sha256Checksum")
        if remote_size is not None and remote_size != job.size:
            raise TransientError(f"Drive reports {remote_size} bytes, {job.size} were sent")
        if remote_md5 is not None and remote_md5 != md5:
            raise TransientError(f"Drive's md5 {remote_md5} does not match the bytes sent ({md5})")
        if remote_sha256 is not None and remote_sha256 != sha256:
            raise TransientError(f"Drive's sha256 {remote_sha256} does not match the bytes sent")
        return UploadResult(
            cloud_path=job.remote_path,
            remote_id=str(resource["id"]),
            remote_size=remote_size if remote_size is not None else job.size,
            remote_hash=f"md5:{remote_md5}" if remote_md5 else None,
            verification="hash" if remote_md5 else "transport",
        )

    # --- the rest of the protocol ---------------------------------------------------------------

    def _find_file(self, remote_path: str) -> dict[str, Any] | None:
        parts = self._split(remote_path)
        parent = self._folder(parts[:-1], create=False)
        if parent is None:
            return None
        found = self._children(parent, parts[-1], folder=False)
        return found[0] if found else None

    def _stat_sync(self, remote_path: str) -> RemoteFile | None:
        item = self._find_file(remote_path)
        if item is None:
            return None
        hashes = {
            key: item[field] for key, field in (("md5", "md5Checksum"), ("sha256", "sha256Checksum")) if field in item
        }
        return RemoteFile(cloud_path=remote_path, remote_id=item["id"], size=int(item.get("size", 0)), hashes=hashes)

    def _read_sync(self, remote_path: str) -> bytes:
        item = self._find_file(remote_path)
        if item is None:
            raise PermanentError(f"no file at {remote_path} on {self.name}")
        data: bytes = self._files().get_media(fileId=item["id"], **self._params()).execute(num_retries=0)
        return data

    def _remove_sync(self, remote_path: str) -> None:
        item = self._find_file(remote_path)
        if item is not None:
            self._files().delete(fileId=item["id"], **self._params()).execute(num_retries=0)

    def _abandon_sync(self, resume_state: dict[str, Any]) -> None:
        """Cancel a session (Drive answers 499 or 204); best effort, since it expires in a week."""
        uri = resume_state.get("session_uri")
        if not uri:
            return
        try:
            response, _ = self._http().request(str(uri), "DELETE")
            log.debug("%s: cancelled upload session (%s)", self.name, response.status)
        except Exception as exc:  # a session that cannot be cancelled expires on its own
            log.info("%s: could not cancel an upload session: %s", self.name, exc)


def session_state(uri: str, file_id: str | None, job: UploadJob) -> dict[str, Any]:
    """What a restarted daemon needs to resume, and to tell whether the content is still the same."""
    return {"session_uri": uri, "file_id": file_id, "size": job.size, "sha256": job.sha256}


def check_unchanged(job: UploadJob) -> None:
    try:
        current = job.local_file.stat()
    except FileNotFoundError as exc:
        raise PermanentError(f"local file vanished: {job.local_file}") from exc
    if current.st_size != job.size or current.st_mtime_ns != job.mtime_ns:
        raise FileChangedError("file changed since it was recorded (size or mtime differs)")
