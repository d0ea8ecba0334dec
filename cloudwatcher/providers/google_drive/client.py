"""One Drive service object per worker thread, and the folder and file lookups built on it."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from typing import Any

import httplib2
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build_from_document

from cloudwatcher.providers.base import PermanentError
from cloudwatcher.providers.google_drive.api import (
    CHUNK_GRANULARITY,
    DEFAULT_CHUNK_SIZE,
    FILE_FIELDS,
    FOLDER_MIME,
    HTTP_TIMEOUT_SECONDS,
    MULTIPART_LIMIT,
    ThrottledHttp,
    discovery_document,
    quote_q,
)
from cloudwatcher.providers.google_drive.config import GoogleDriveTarget
from cloudwatcher.providers.google_drive.signin import load_credentials
from cloudwatcher.providers.google_drive.state import FolderCache, LiveSessions, PathLocks
from cloudwatcher.providers.google_drive.upload_cap import UploadCapWatch
from cloudwatcher.providers.pacing import TargetPacing
from cloudwatcher.providers.trust import target_trust

log = logging.getLogger(__name__)


class DriveBase:
    """The target's configuration, its per-thread clients and its lookups; the layers above add uploads."""

    case_insensitive = False
    renames_paths = False  # Drive takes any name as it is

    def __init__(
        self, config: GoogleDriveTarget, *, concurrency: int = 4, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> None:
        if chunk_size <= 0 or chunk_size % CHUNK_GRANULARITY:
            raise ValueError(f"chunk_size must be a positive multiple of {CHUNK_GRANULARITY}")
        self.name = config.name
        self._config = config
        self._ca_certs = target_trust(config.ca_bundle, target=config.name).bundle_file()  # httplib2 takes a file
        self._chunk_size = chunk_size
        self._multipart_limit = min(chunk_size, MULTIPART_LIMIT)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, concurrency), thread_name_prefix=f"gdrive-{config.name}"
        )
        self._local = threading.local()
        self._transports: list[AuthorizedHttp] = []
        self._setup_lock = threading.Lock()
        self._credentials: Any = None  # google-auth credentials of whichever kind signin.py built
        self._discovery = discovery_document(config.api_endpoint)
        self._pacing = TargetPacing.for_target(config)
        self._folders = FolderCache(config.folder_id)
        # Lookup-then-create must not interleave for one name, or Drive keeps both copies.
        self._locks = PathLocks()
        self._live_sessions = LiveSessions()
        self._upload_cap = UploadCapWatch()  # the daily cap in the per-minute limit's clothes

    # --- per-thread client ----------------------------------------------------------------------

    def _token_uri(self) -> str:
        return str(getattr(self._credentials, "_token_uri", "the token endpoint"))

    def _get_credentials(self) -> Any:
        with self._setup_lock:
            if self._credentials is None:
                self._credentials = load_credentials(self._config)
            return self._credentials

    def _http(self) -> ThrottledHttp:
        transport: ThrottledHttp | None = getattr(self._local, "http", None)
        if transport is None:
            raw = httplib2.Http(timeout=HTTP_TIMEOUT_SECONDS, ca_certs=self._ca_certs)
            # Drive answers 308 "Resume Incomplete" to chunks; it is not a redirect.
            raw.redirect_codes = raw.redirect_codes - {308}
            transport = ThrottledHttp(self._get_credentials(), raw, self._pacing.requests)
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
            f"name = '{quote_q(name)}' and '{quote_q(parent_id)}' in parents and trashed = false"
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
