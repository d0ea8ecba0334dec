"""Google Drive (API v3) through google-api-python-client, as a mirror target.

Why it is built the way it is:

- The client is synchronous and httplib2 is not thread-safe, so every call runs in a bounded
  thread pool (size = the target's upload concurrency) with one service object, and so one
  connection pool, per thread.
- The discovery document is the package's static copy with its ``rootUrl`` set to
  ``api_endpoint``. ``client_options.api_endpoint`` alone only swaps the *host* of ``/upload/``
  URLs (googleapiclient.discovery._fix_up_media_path_base_url keeps ``https`` and drops any path
  prefix), so an ``http://`` emulator or a proxied root would get metadata and media calls on
  different roots.
- Drive allows several files of one name in a folder
  (https://developers.google.com/drive/api/guides/about-files): every upload looks the name up
  first and updates the file it finds; folders are looked up or created once per path under a
  per-path lock and cached.
- The library's own retries are off (``num_retries=0``): the daemon owns the retry policy. The
  one exception is re-synchronising a resumable session after a dropped chunk, which is part of
  the upload protocol (https://developers.google.com/drive/api/guides/manage-uploads#resumable),
  not a retry of a failed request.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import email.utils
import functools
import hashlib
import http.client
import json
import logging
import mimetypes
import os
import ssl
import threading
import zoneinfo
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import google.auth.exceptions
import httplib2
from google.oauth2 import service_account
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient import discovery_cache
from googleapiclient.discovery import build_from_document
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaUpload

from cloudwatcher.config import GoogleDriveTarget
from cloudwatcher.config.settings import credential_path
from cloudwatcher.providers.base import (
    DailyCapError,
    FileChangedError,
    PermanentError,
    ProviderError,
    QuotaExceededError,
    RemoteFile,
    SaveState,
    TransientError,
    UploadJob,
    UploadResult,
)
from cloudwatcher.providers.pacing import TargetPacing, TokenBucket

log = logging.getLogger(__name__)
T = TypeVar("T")
_Save = Callable[[dict[str, Any] | None], None]

DRIVE_SCOPE = "https://www.googleapis.com/auth/drive"
FOLDER_MIME = "application/vnd.google-apps.folder"
FILE_FIELDS = "id,name,size,md5Checksum,sha256Checksum"
#: Resumable chunks except the last must be multiples of 256 KiB (Drive's upload guide).
CHUNK_GRANULARITY = 256 * 1024
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
#: Drive documents multipart uploads "for files up to 5 MB".
MULTIPART_LIMIT = 5 * 1024 * 1024
HTTP_TIMEOUT_SECONDS = 120
#: How long a worker thread waits for the ledger to record a session before giving up.
SAVE_STATE_TIMEOUT = 60.0
#: Session re-synchronisations in a row without progress before the attempt gives up.
MAX_SESSION_RESYNCS = 3
_RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded"}
#: A full drive: storage quota, or a shared drive's item-count limit.
_FULL_REASONS = {"storageQuotaExceeded", "teamDriveFileLimitExceeded"}
#: The daily caps. Plain "userRateLimitExceeded" is the per-minute quota, not the 750 GB cap.
_DAILY_CAP_REASONS = {"dailyLimitExceeded", "uploadLimitExceeded", "dailyLimitExceededUnreg"}
#: Where distributions keep the system trust store as one file (httplib2 takes only a file).
_SYSTEM_CA_FILES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem")
_NETWORK_ERRORS = (TimeoutError, ConnectionError, http.client.HTTPException, httplib2.HttpLib2Error)


class _ThrottledHttp(AuthorizedHttp):
    """Takes one request token per API or upload request. Token refreshes use the bare transport
    (``self._request``), so the token endpoint is not counted, as CONTRACT section 3 asks."""

    def __init__(self, credentials: Any, http: httplib2.Http, limiter: TokenBucket) -> None:
        super().__init__(credentials, http=http)
        self._limiter = limiter

    def request(self, uri: str, method: str = "GET", body: Any = None, headers: Any = None, **kwargs: Any) -> Any:
        self._limiter.acquire()
        return super().request(uri, method, body=body, headers=headers, **kwargs)


class _HashingMedia(MediaUpload):
    """Hands the library the local file chunk by chunk (memory stays flat) and hashes exactly the
    bytes sent, so the md5 Drive reports is compared with what went over the wire."""

    def __init__(self, job: UploadJob, chunk_size: int, resumable: bool, bandwidth: TokenBucket) -> None:
        super().__init__()
        try:
            self._file = job.local_file.open("rb")
        except FileNotFoundError as exc:
            raise PermanentError(f"local file vanished: {job.local_file}") from exc
        self._size = job.size
        self._chunk_size = chunk_size
        self._resumable = resumable
        self._mimetype = mimetypes.guess_type(job.remote_path)[0] or "application/octet-stream"
        self._bandwidth = bandwidth
        self._md5 = hashlib.md5()
        self._sha256 = hashlib.sha256()
        self._hashed = 0

    def chunksize(self) -> int:
        return self._chunk_size

    def mimetype(self) -> str:
        return self._mimetype

    def size(self) -> int:
        return self._size

    def resumable(self) -> bool:
        return self._resumable

    def has_stream(self) -> bool:
        return False

    def getbytes(self, begin: int, length: int) -> bytes:
        self._hash_up_to(begin)  # resuming from a server-reported offset: hash what it holds
        self._file.seek(begin)
        data: bytes = self._file.read(length)
        if len(data) != min(length, self._size - begin):
            raise FileChangedError(f"file changed during upload: it ended before byte {self._size}")
        if begin + len(data) > self._hashed:
            self._update(data[self._hashed - begin :])
        self._bandwidth.acquire(len(data))
        return data

    def _update(self, data: bytes) -> None:
        self._md5.update(data)
        self._sha256.update(data)
        self._hashed += len(data)

    def _hash_up_to(self, offset: int) -> None:
        self._file.seek(self._hashed)
        while self._hashed < offset:
            block = self._file.read(min(1 << 20, offset - self._hashed))
            if not block:
                raise FileChangedError("file changed during upload: it is shorter than recorded")
            self._update(block)

    def digests(self) -> tuple[str, str]:
        """(md5, sha256) of the whole file as sent; growth after the recorded size is a change."""
        self._hash_up_to(self._size)
        self._file.seek(self._size)
        if self._file.read(1):
            raise FileChangedError("file changed during upload: it grew past its recorded size")
        return self._md5.hexdigest(), self._sha256.hexdigest()

    def close(self) -> None:
        self._file.close()


class _PathLocks:
    """One lock per path while someone holds or waits for it (dropped after, so the map does not
    grow with every file ever uploaded)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[threading.Lock, int]] = {}
        self._guard = threading.Lock()

    @contextlib.contextmanager
    def hold(self, path: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(path, (threading.Lock(), 0))
            self._locks[path] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[path]
                if users == 1:
                    del self._locks[path]
                else:
                    self._locks[path] = (lock, users - 1)


class _LiveSessions:
    """The latest session state saved per (remote path, sha256, size) in this process, bounded."""

    LIMIT = 1000

    def __init__(self) -> None:
        self._states: collections.OrderedDict[tuple[str, str, int], dict[str, Any]] = collections.OrderedDict()
        self._guard = threading.Lock()

    def get(self, key: tuple[str, str, int], default: dict[str, Any] | None) -> dict[str, Any] | None:
        with self._guard:
            return self._states.get(key, default)

    def put(self, key: tuple[str, str, int], state: dict[str, Any] | None) -> None:
        with self._guard:
            self._states.pop(key, None)
            if state is not None:
                self._states[key] = state
                while len(self._states) > self.LIMIT:
                    self._states.popitem(last=False)


class _FolderCache:
    """Folder ids by path; the root folder is ``root_id``."""

    def __init__(self, root_id: str) -> None:
        self.root_id = root_id
        self._ids: dict[str, str] = {}
        self._guard = threading.Lock()

    def get(self, path: str) -> str | None:
        with self._guard:
            return self._ids.get(path)

    def put(self, path: str, folder_id: str) -> None:
        with self._guard:
            self._ids[path] = folder_id

    def forget(self) -> bool:
        """Drop every cached id; True when there was one (a stale id may explain a 404)."""
        with self._guard:
            had = bool(self._ids)
            self._ids.clear()
            return had


def _discovery_document(api_endpoint: str) -> dict[str, Any]:
    """The packaged Drive v3 discovery document, rooted at ``api_endpoint`` (never fetched)."""
    text = discovery_cache.get_static_doc("drive", "v3")
    if text is None:
        raise RuntimeError("google-api-python-client ships no static drive v3 discovery document")
    document: dict[str, Any] = json.loads(text)
    root = api_endpoint.rstrip("/") + "/"
    document["rootUrl"] = document["mtlsRootUrl"] = root
    document["baseUrl"] = root + document["servicePath"]
    return document


def _ca_certs(ca_bundle: Path | None) -> str | None:
    """The target's bundle, else SSL_CERT_FILE, else the system store (httplib2 would otherwise
    trust only its own bundled list)."""
    if ca_bundle is not None:
        return str(ca_bundle)
    if os.environ.get("SSL_CERT_FILE"):
        return os.environ["SSL_CERT_FILE"]
    for candidate in (ssl.get_default_verify_paths().cafile, *_SYSTEM_CA_FILES):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def _quote(value: str) -> str:
    """A string literal for a Drive ``q`` expression (backslash and quote escaped)."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _seconds_until_daily_reset() -> float:
    """Drive's per-day quotas reset at midnight Pacific time; the earliest the cap can be gone."""
    now = dt.datetime.now(zoneinfo.ZoneInfo("America/Los_Angeles"))
    midnight = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - now).total_seconds() + 60


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def translate_http_error(exc: HttpError) -> ProviderError:
    """Map Drive's status and ``errors[0].reason`` to the daemon's retry classes (API-NOTES.md)."""
    status = exc.resp.status
    reason, message = "", ""
    try:
        error = json.loads(exc.content)["error"]
        message = str(error.get("message", ""))
        reason = str((error.get("errors") or [{}])[0].get("reason", ""))
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        message = str(exc.content[:200] if isinstance(exc.content, bytes) else exc.content)
    text = f"Google Drive answered {status} {reason or 'error'}: {message}".rstrip(": ")
    retry_after = _retry_after(exc.resp.get("retry-after"))
    lowered = message.lower()
    if reason in _FULL_REASONS:
        return QuotaExceededError(text)
    if status == 403 and (reason in _DAILY_CAP_REASONS or "upload limit" in lowered or "daily limit" in lowered):
        return DailyCapError(text, retry_after=retry_after or _seconds_until_daily_reset())
    if status == 429 or (status == 403 and reason in _RATE_REASONS) or status == 408 or status >= 500:
        return TransientError(text, retry_after=retry_after)
    if status == 401:
        return PermanentError(f"{text} (the service account's token was refused)")
    return PermanentError(text)


def translate_error(exc: BaseException, token_uri: str = "the token endpoint") -> ProviderError:
    """Any exception from the SDK, the transport or the token refresh → a ProviderError."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, HttpError):
        return translate_http_error(exc)
    if isinstance(exc, google.auth.exceptions.RefreshError):
        text = f"service-account token request to {token_uri} failed: {exc}"
        return TransientError(text) if getattr(exc, "retryable", False) else PermanentError(text)
    if isinstance(exc, google.auth.exceptions.TransportError):
        return TransientError(f"cannot reach {token_uri}: {exc}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return PermanentError(f"TLS certificate not trusted (set ca_bundle?): {exc}")
    if isinstance(exc, (*_NETWORK_ERRORS, OSError)):
        return TransientError(f"network error talking to Google Drive: {exc!r}")
    return TransientError(f"unexpected {type(exc).__name__} from the Drive client: {exc}")


class GoogleDriveProvider:
    """A folder in My Drive or a shared drive as a mirror target. Drive allows any character in
    a name, so ``remote_name`` is the identity, and names are case-sensitive."""

    case_insensitive = False

    def __init__(
        self, config: GoogleDriveTarget, *, concurrency: int = 4, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> None:
        if chunk_size <= 0 or chunk_size % CHUNK_GRANULARITY:
            raise ValueError(f"chunk_size must be a positive multiple of {CHUNK_GRANULARITY}")
        self.name = config.name
        self._config = config
        self._chunk_size = chunk_size
        self._multipart_limit = min(chunk_size, MULTIPART_LIMIT)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, concurrency), thread_name_prefix=f"gdrive-{config.name}"
        )
        self._local = threading.local()
        self._transports: list[AuthorizedHttp] = []
        self._setup_lock = threading.Lock()
        self._credentials: service_account.Credentials | None = None
        self._discovery = _discovery_document(config.api_endpoint)
        self._pacing = TargetPacing.for_target(config)
        self._folders = _FolderCache(config.folder_id)
        # Lookup-then-create must not interleave for one name, or Drive keeps both copies.
        self._locks = _PathLocks()
        self._live_sessions = _LiveSessions()

    # --- the async surface ----------------------------------------------------------------------

    def remote_name(self, remote_path: str) -> str:
        return remote_path

    async def upload(self, job: UploadJob, save_state: SaveState) -> UploadResult:
        loop = asyncio.get_running_loop()
        # A retry in this process (the daemon's quick retries reuse the job, and with it the
        # resume_state read when the row was claimed) continues the session saved since.
        key = (job.remote_path, job.sha256, job.size)
        job = dataclasses.replace(job, resume_state=self._live_sessions.get(key, job.resume_state))

        async def persist(state: dict[str, Any] | None) -> None:
            await save_state(state)

        def save(state: dict[str, Any] | None) -> None:
            self._live_sessions.put(key, state)
            # Called from the worker thread: the ledger write runs on the daemon's loop.
            try:
                asyncio.run_coroutine_threadsafe(persist(state), loop).result(timeout=SAVE_STATE_TIMEOUT)
            except (concurrent.futures.TimeoutError, RuntimeError) as exc:
                raise TransientError(f"could not record the upload session: {exc!r}") from exc

        # A cancelled coroutine cannot stop its thread; the flag ends the upload at the next
        # chunk boundary, its session saved for the next attempt to resume.
        cancelled = threading.Event()
        try:
            return await self._run(self._upload_sync, job, save, cancelled)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def stat(self, remote_path: str) -> RemoteFile | None:
        return await self._run(self._stat_sync, remote_path)

    async def read(self, remote_path: str) -> bytes:
        return await self._run(self._read_sync, remote_path)

    async def abandon(self, resume_state: dict[str, Any]) -> None:
        await self._run(self._abandon_sync, resume_state)

    async def close(self) -> None:
        self._pacing.close()  # throttled threads wake at once
        await asyncio.to_thread(self._pool.shutdown, True)
        for transport in self._transports:
            transport.close()

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, functools.partial(function, *args))
        except Exception as exc:
            translated = translate_error(exc, self._token_uri())
            if translated is exc:
                raise
            raise translated from exc

    # --- per-thread client ----------------------------------------------------------------------

    def _token_uri(self) -> str:
        return str(getattr(self._credentials, "_token_uri", "the token endpoint"))

    def _get_credentials(self) -> service_account.Credentials:
        with self._setup_lock:
            if self._credentials is None:
                key_file = credential_path(self._config.service_account_file)
                try:
                    self._credentials = service_account.Credentials.from_service_account_file(
                        str(key_file), scopes=[DRIVE_SCOPE]
                    )
                except (OSError, ValueError) as exc:
                    raise PermanentError(f"cannot use service account key {key_file}: {exc}") from exc
            return self._credentials

    def _http(self) -> _ThrottledHttp:
        transport: _ThrottledHttp | None = getattr(self._local, "http", None)
        if transport is None:
            raw = httplib2.Http(timeout=HTTP_TIMEOUT_SECONDS, ca_certs=_ca_certs(self._config.ca_bundle))
            # Drive answers 308 "Resume Incomplete" to chunks; it is not a redirect.
            raw.redirect_codes = raw.redirect_codes - {308}
            transport = _ThrottledHttp(self._get_credentials(), raw, self._pacing.requests)
            self._local.http = transport
            with self._setup_lock:
                self._transports.append(transport)
        return transport

    def _files(self) -> Any:
        service = getattr(self._local, "service", None)
        if service is None:
            base = self._discovery["rootUrl"] + self._discovery["servicePath"]
            service = build_from_document(self._discovery, http=self._http(), client_options={"api_endpoint": base})
            self._local.service = service
        return service.files()

    def _params(self, *, listing: bool = False) -> dict[str, Any]:
        """supportsAllDrives on every call; the shared-drive corpus on listings."""
        params: dict[str, Any] = {"supportsAllDrives": True}
        if listing and self._config.shared_drive_id:
            params.update(includeItemsFromAllDrives=True, corpora="drive", driveId=self._config.shared_drive_id)
        return params

    # --- lookups --------------------------------------------------------------------------------

    def _children(self, parent_id: str, name: str, *, folder: bool) -> list[dict[str, Any]]:
        q = (
            f"name = '{_quote(name)}' and '{_quote(parent_id)}' in parents and trashed = false"
            f" and mimeType {'=' if folder else '!='} '{FOLDER_MIME}'"
        )
        found: list[dict[str, Any]] = []
        page: dict[str, Any] = {}
        while True:
            answer = (
                self._files()
                .list(
                    q=q,
                    fields=f"nextPageToken,files({FILE_FIELDS})",
                    pageSize=100,
                    **page,
                    **self._params(listing=True),
                )
                .execute(num_retries=0)
            )
            found.extend(answer.get("files", []))
            if not answer.get("nextPageToken"):
                break
            page = {"pageToken": answer["nextPageToken"]}
        if len(found) > 1:
            log.warning(
                "%s: %d items named %r in folder %s; using %s",
                self.name,
                len(found),
                name,
                parent_id,
                found[0]["id"],
            )
        return found

    def _folder(self, parts: list[str], *, create: bool) -> str | None:
        """The id of the folder chain ``parts`` under the root, created when asked; else None."""
        parent = self._folders.root_id
        for depth in range(1, len(parts) + 1):
            key = "/".join(parts[:depth])
            folder_id = self._folders.get(key)
            if folder_id is None:
                with self._locks.hold(f"folder:{key}"):
                    folder_id = self._folders.get(key)
                    if folder_id is None:
                        existing = self._children(parent, parts[depth - 1], folder=True)
                        if existing:
                            folder_id = existing[0]["id"]
                        elif not create:
                            return None
                        else:
                            body = {"name": parts[depth - 1], "mimeType": FOLDER_MIME, "parents": [parent]}
                            created = (
                                self._files().create(body=body, fields="id", **self._params()).execute(num_retries=0)
                            )
                            folder_id = created["id"]
                        self._folders.put(key, str(folder_id))
            parent = str(folder_id)
        return parent

    @staticmethod
    def _split(remote_path: str) -> list[str]:
        parts = [part for part in remote_path.split("/") if part]
        if not parts:
            raise PermanentError(f"empty remote path: {remote_path!r}")
        return parts

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
        _check_unchanged(job)
        parts = self._split(job.remote_path)
        parent = self._folder(parts[:-1], create=True)
        assert parent is not None
        existing = self._children(parent, parts[-1], folder=False)
        file_id: str | None = existing[0]["id"] if existing else None
        resumable = job.size > self._multipart_limit or bool(job.resume_state)
        media = _HashingMedia(job, self._chunk_size, resumable, self._pacing.bandwidth)
        try:
            if resumable:
                resource = self._send_resumable(job, media, parent, parts[-1], file_id, save, cancelled)
            else:
                resource = self._request(media, parent, parts[-1], file_id).execute(num_retries=0)
            md5, sha256 = media.digests()
        finally:
            media.close()
        _check_unchanged(job)
        if sha256 != job.sha256:
            raise FileChangedError("file changed since it was recorded (sha256 differs)")
        return self._verified(job, resource, md5, sha256)

    def _request(self, media: _HashingMedia, parent: str, name: str, file_id: str | None) -> Any:
        """files.create into ``parent``, or files.update (PATCH, content only) of ``file_id``."""
        if file_id is None:
            body = {"name": name, "parents": [parent]}
            return self._files().create(body=body, media_body=media, fields=FILE_FIELDS, **self._params())
        return self._files().update(fileId=file_id, media_body=media, fields=FILE_FIELDS, **self._params())

    def _send_resumable(
        self,
        job: UploadJob,
        media: _HashingMedia,
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
            except (HttpError, *_NETWORK_ERRORS, OSError) as exc:
                if request.resumable_uri is None:
                    raise
                if not saved:
                    save(_session_state(request.resumable_uri, file_id, job))
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
                save(_session_state(request.resumable_uri, file_id, job))
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


def _session_state(uri: str, file_id: str | None, job: UploadJob) -> dict[str, Any]:
    """What a restarted daemon needs to resume, and to tell whether the content is still the same."""
    return {"session_uri": uri, "file_id": file_id, "size": job.size, "sha256": job.sha256}


def _check_unchanged(job: UploadJob) -> None:
    try:
        current = job.local_file.stat()
    except FileNotFoundError as exc:
        raise PermanentError(f"local file vanished: {job.local_file}") from exc
    if current.st_size != job.size or current.st_mtime_ns != job.mtime_ns:
        raise FileChangedError("file changed since it was recorded (size or mtime differs)")
