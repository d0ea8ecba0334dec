"""SharePoint / OneDrive for Business through Microsoft Graph (msgraph-sdk + azure-identity).

Requests go through the SDK's request adapter: JSON calls through the generated request
builders, file bytes as :class:`RequestInformation` sent by the same adapter and http client.
Upload fragments go through a second adapter on the same http client with anonymous
authentication, because the ``uploadUrl`` is pre-authenticated and MUST NOT receive the
bearer token. msgraph-core 1.5.2's ``LargeFileUploadTask`` is not used: it crashes on open
``"N-"`` ranges and sends fragments one byte too long on ``"N-M"`` ones (API-NOTES).

The SDK's retry middleware is left out on purpose: it sleeps on ``Retry-After`` (up to
minutes) inside one call, while the daemon owns the retry policy and wants the hint, which
this module reports as :attr:`TransientError.retry_after`.

Name rule (``remote_name``), applied to each path segment, deterministic, as OneDrive's
client and rclone do it, so that what SharePoint refuses is renamed, never refused:

=====================================  ==================================================
local                                  remote
=====================================  ==================================================
``" * : < > ? \\ |``                    the fullwidth form, code point + 0xFEE0 (``:`` is
                                       U+FF1A FULLWIDTH COLON, ``?`` U+FF1F, ...)
leading / trailing spaces              U+2420 SYMBOL FOR SPACE, one per space
a trailing ``.``                       U+FF0E FULLWIDTH FULL STOP
a name starting with ``~$``            prefixed with ``_`` (``_~$x.docx``)
``_vti_`` anywhere (any case)          its last ``_`` becomes U+FF3F FULLWIDTH LOW LINE
``CON PRN AUX NUL COM0-9 LPT0-9``      ``_`` after the stem (``CON.txt`` becomes
(alone or before an extension)         ``CON_.txt``)
``.lock``, ``desktop.ini``             suffixed with ``_``
=====================================  ==================================================

``/`` separates segments and never reaches the rule. A path longer than 400 characters
(target root included) is refused with :class:`PermanentError`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import os
import re
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from email.utils import parsedate_to_datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError, ServiceResponseError
from azure.identity.aio import ClientSecretCredential
from kiota_abstractions.api_error import APIError
from kiota_abstractions.authentication import AnonymousAuthenticationProvider
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.middleware import BaseMiddleware, ParametersNameDecodingHandler, RedirectHandler, UserAgentHandler
from kiota_serialization_json.json_parse_node import JsonParseNode
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.drives.item.items.item.children.children_request_builder import (
    ChildrenRequestBuilder,
)
from msgraph.generated.drives.item.items.item.content.content_request_builder import ContentRequestBuilder
from msgraph.generated.drives.item.items.item.create_upload_session.create_upload_session_post_request_body import (
    CreateUploadSessionPostRequestBody,
)
from msgraph.generated.drives.item.items.item.create_upload_session.create_upload_session_request_builder import (
    CreateUploadSessionRequestBuilder,
)
from msgraph.generated.drives.item.items.item.drive_item_item_request_builder import (
    DriveItemItemRequestBuilder,
)
from msgraph.generated.models.drive_item import DriveItem
from msgraph.generated.models.drive_item_uploadable_properties import DriveItemUploadableProperties
from msgraph.generated.models.folder import Folder
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph_core import GraphClientFactory

from cloudwatcher.config import SharePointTarget
from cloudwatcher.providers.base import (
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
from cloudwatcher.providers.quickxorhash import QuickXorHash

__all__ = ["QuickXorMismatchError", "SharePointProvider", "rewritten_by_server", "sanitize_segment"]

log = logging.getLogger(__name__)

SIMPLE_UPLOAD_LIMIT = 4 * 1024 * 1024  # older clouds cap simple PUTs at 4 MB
FRAGMENT_UNIT = 320 * 1024  # every fragment but the last MUST be a multiple of this
FRAGMENT_SIZE = 10 * FRAGMENT_UNIT
MAX_PATH_LENGTH = 400
_READ_CHUNK = 256 * 1024
_RESYNCS_PER_ATTEMPT = 3  # dropped fragments recovered within one upload attempt
_ERRORS: dict[str, Any] = {"XXX": ODataError}

T = TypeVar("T")

# ----------------------------------------------------------------------------------- names

_FULLWIDTH = str.maketrans({c: chr(ord(c) + 0xFEE0) for c in '"*:<>?\\|'})
_DEVICE_NAMES = {"con", "prn", "aux", "nul"} | {f"{d}{n}" for d in ("com", "lpt") for n in range(10)}
_VTI = re.compile("_vti_", re.IGNORECASE)


def sanitize_segment(name: str) -> str:
    """One path segment as SharePoint will accept it (the table in the module docstring)."""
    name = name.translate(_FULLWIDTH)
    stripped = name.strip(" ")
    if stripped != name:
        lead = len(name) - len(name.lstrip(" "))
        trail = len(name) - len(name.rstrip(" "))
        name = "\u2420" * lead + stripped + "\u2420" * trail
    if name.endswith("."):
        name = name[:-1] + "\uff0e"
    if name.startswith("~$"):
        name = "_" + name
    name = _VTI.sub("_vti\uff3f", name)
    stem, dot, extension = name.partition(".")
    if stem.lower() in _DEVICE_NAMES:
        name = f"{stem}_{dot}{extension}"
    elif name.lower() in (".lock", "desktop.ini"):
        name += "_"
    return name


# ----------------------------------------------------------------------------------- server rewrites

#: What SharePoint document libraries rewrite on upload: Office documents (property promotion,
#: co-authoring metadata), PDF and HTML, and images whose metadata it touches. The stored copy's
#: size and quickXorHash then differ from the bytes sent, and differ again on every upload.
SERVER_REWRITTEN_TYPES = frozenset(
    {".doc", ".docx", ".docm", ".dotx", ".xls", ".xlsx", ".xlsm", ".xltx", ".ppt", ".pptx", ".pptm", ".potx"}
    | {".vsdx", ".one", ".pdf", ".htm", ".html", ".aspx", ".mht", ".mhtml"}
    | {".jpg", ".jpeg", ".png", ".gif", ".tif", ".tiff", ".heic", ".heif", ".webp"}
)


def rewritten_by_server(name: str, stored_size: int | None, sent_size: int) -> bool:
    """Whether a hash mismatch after an acknowledged upload is SharePoint's own rewrite.

    A changed size cannot come from the transfer (the session acknowledged every byte of the
    declared total), so it is the library's doing; a type SharePoint is known to rewrite may
    also keep its size. A same-size mismatch on any other file is corruption: an error.
    """
    if stored_size is not None and stored_size != sent_size:
        return True
    return PurePosixPath(name).suffix.lower() in SERVER_REWRITTEN_TYPES


# ----------------------------------------------------------------------------------- errors


class QuickXorMismatchError(TransientError):
    """SharePoint reported a quickXorHash that differs from the bytes sent."""


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def classify(status: int, code: str, message: str, headers: Any = None) -> ProviderError:
    """Map a Graph answer onto the daemon's retry classes (CONTRACT.md section 5)."""
    text = f"SharePoint {status} {code}: {message}".strip()
    if status == 507 or code in ("insufficientStorage", "quotaLimitReached"):
        return QuotaExceededError(text)
    if status == 429 or status >= 500 or status in (404, 409, 416, 408):
        return TransientError(text, retry_after=_retry_after(headers))
    if status == 401:
        return PermanentError(f"{text} (refused again after a token refresh)")
    return PermanentError(text)


def _from_api_error(exc: APIError) -> ProviderError:
    status = exc.response_status_code or 0
    code, message = "", str(exc)
    if isinstance(exc, ODataError) and exc.error is not None:
        code, message = exc.error.code or "", exc.error.message or ""
    return classify(status, code, message, exc.response_headers)


def _from_token_error(exc: ClientAuthenticationError) -> ProviderError:
    """The token endpoint refused: bad credentials are permanent, its outages are not.

    azure-identity's message carries the AADSTS code and description, never the secret.
    """
    response: Any = exc.response
    status: int = (response.status_code or 0) if response is not None else 0
    message = (exc.message or "").splitlines()[0] if exc.message else type(exc).__name__
    if status == 429 or status >= 500:
        headers = response.headers if response is not None else None
        return TransientError(f"token endpoint {status}: {message}", retry_after=_retry_after(headers))
    return PermanentError(f"token request refused ({status or 'no answer'}): {message}")


def _status(exc: BaseException | None) -> int | None:
    return exc.response_status_code if isinstance(exc, APIError) else None


# ----------------------------------------------------------------------------------- credential


class _RenewableCredential:
    """ClientSecretCredential (which caches and refreshes tokens), plus a way to drop its cache.

    A 401 with a token the cache still considers valid (revoked, rotated keys) is answered by
    :meth:`renew`: a fresh credential, hence a fresh token; the old one is closed at the end.
    """

    def __init__(self, factory: Callable[[], ClientSecretCredential]) -> None:
        self._factory = factory
        self._current = factory()
        self._retired: list[ClientSecretCredential] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return await self._current.get_token(*scopes, **kwargs)

    def renew(self) -> None:
        self._retired.append(self._current)
        self._current = self._factory()

    async def close(self) -> None:
        for credential in [*self._retired, self._current]:
            await credential.close()
        self._retired.clear()

    async def __aenter__(self) -> _RenewableCredential:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


# ----------------------------------------------------------------------------------- pacing


class _RequestPacing(BaseMiddleware):
    """One token per HTTP request to Graph, upload and download URLs (token requests use
    azure-identity's own transport, so they are not counted, as CONTRACT.md section 3 asks)."""

    def __init__(self, bucket: TokenBucket) -> None:
        super().__init__()
        self.bucket = bucket

    async def send(self, request: httpx.Request, transport: httpx.AsyncBaseTransport) -> httpx.Response:
        await self.bucket.acquire_async()
        return await super().send(request, transport)


def _trust_file(ca_bundle: Path | None) -> str | None:
    """The PEM bundle to trust: the target's ``ca_bundle``, else ``SSL_CERT_FILE``, else None
    (the system store). Resolved here, not left to each library, because aiohttp (under
    azure-identity) builds its default TLS context once at import time."""
    if ca_bundle is not None:
        return str(ca_bundle)
    return os.environ.get("SSL_CERT_FILE") or None


def _ssl_context(trust_file: str | None) -> ssl.SSLContext:
    """A verifying TLS context: the given bundle, or the system store. Never unverified."""
    return ssl.create_default_context(cafile=trust_file) if trust_file else ssl.create_default_context()


def _parse_ranges(ranges: list[str] | None) -> int | None:
    """The next byte the session expects, from ``["N-"]`` or SharePoint's ``["N-M"]``."""
    if not ranges:
        return None
    starts = [int(item.split("-", 1)[0]) for item in ranges if item.split("-", 1)[0].isdigit()]
    return min(starts) if starts else None


def _read(reader: IO[bytes], count: int) -> bytes:
    return reader.read(count)


class SharePointProvider:
    """A SharePoint document library (or OneDrive for Business drive) as a mirror target."""

    case_insensitive = True

    def __init__(self, config: SharePointTarget, *, concurrency: int = 4) -> None:
        self.name = config.name
        self._config = config
        self._graph_url = config.graph_url.rstrip("/")
        graph_host = urlsplit(self._graph_url).hostname or ""
        self._root = [sanitize_segment(part) for part in config.root.split("/") if part]
        trust_file = _trust_file(config.ca_bundle)
        verify = _ssl_context(trust_file)
        self._credential = _RenewableCredential(
            lambda: ClientSecretCredential(
                config.tenant_id,
                config.client_id,
                config.secret(),
                authority=config.authority_url.rstrip("/"),
                disable_instance_discovery=True,
                connection_verify=trust_file or True,
                # Two quick retries smooth a blip; longer outages are the daemon's to retry.
                retry_total=2,
            )
        )
        scope = f"https://{graph_host}/.default" if graph_host else "https://graph.microsoft.com/.default"
        auth = AzureIdentityAuthenticationProvider(
            self._credential,  # an AsyncTokenCredential by shape
            scopes=[scope],
            allowed_hosts=[graph_host],
        )
        self._pacing = TargetPacing.for_target(config)
        middleware: list[BaseMiddleware] = [RedirectHandler(), ParametersNameDecodingHandler(), UserAgentHandler()]
        if self._pacing.requests.limited:
            middleware.append(_RequestPacing(self._pacing.requests))
        self._http = GraphClientFactory.create_with_custom_middleware(
            middleware=middleware,
            client=httpx.AsyncClient(
                verify=verify,
                timeout=httpx.Timeout(120.0, connect=20.0),
                limits=httpx.Limits(max_connections=max(4, 2 * concurrency)),
            ),
        )
        self._adapter = GraphRequestAdapter(auth, client=self._http)
        self._adapter.base_url = self._graph_url
        self._upload_adapter = GraphRequestAdapter(AnonymousAuthenticationProvider(), client=self._http)
        self._client = GraphServiceClient(request_adapter=self._adapter)
        self._drive_id = config.drive_id
        self._folder_ids: dict[str, str] = {}
        self._drive_lock = asyncio.Lock()

    # ------------------------------------------------------------------------------- paths

    def remote_name(self, remote_path: str) -> str:
        return "/".join(sanitize_segment(part) for part in remote_path.split("/") if part)

    def _segments(self, remote_path: str) -> list[str]:
        segments = self._root + [sanitize_segment(part) for part in remote_path.split("/") if part]
        full = "/".join(segments)
        if len(full) > MAX_PATH_LENGTH:
            raise PermanentError(f"SharePoint path longer than {MAX_PATH_LENGTH} characters: {full[:80]}...")
        if not segments or segments == self._root:
            raise PermanentError(f"not a file path: {remote_path!r}")
        return segments

    def _url(self, drive_id: str, segments: list[str], *, anchor: str = "root", suffix: str = "") -> str:
        path = "/".join(quote(part, safe="") for part in segments)
        return f"{self._graph_url}/drives/{quote(drive_id, safe='')}/{anchor}:/{path}:{suffix}"

    # ------------------------------------------------------------------------------- calls

    async def _call(self, make: Callable[[], Awaitable[T]], *, bearer: bool = True) -> T:
        """Run one SDK call; map errors; on a 401 renew the token once and try again.

        ``bearer=False`` marks calls to pre-authenticated URLs, where a new token cannot help.
        """
        for attempt in (1, 2):
            try:
                return await make()
            except APIError as exc:
                if exc.response_status_code == 401 and attempt == 1 and bearer:
                    log.info("%s: Graph refused the access token; fetching a new one", self.name)
                    self._credential.renew()
                    continue
                raise _from_api_error(exc) from exc
            except ClientAuthenticationError as exc:
                raise _from_token_error(exc) from exc
            except (ServiceRequestError, ServiceResponseError) as exc:
                raise TransientError(f"token endpoint unreachable: {type(exc).__name__}") from exc
            except httpx.TimeoutException as exc:
                raise TransientError(f"SharePoint request timed out: {type(exc).__name__}") from exc
            except httpx.TransportError as exc:
                raise TransientError(f"SharePoint connection failed: {exc!r}") from exc
        raise AssertionError("unreachable")

    async def _drive(self) -> str:
        """The drive id: configured, or the site's default document library (resolved once)."""
        async with self._drive_lock:
            if self._drive_id is None:
                site_id = self._config.site_id or ""
                drive = await self._call(lambda: self._client.sites.by_site_id(site_id).drive.get())
                if drive is None or not drive.id:
                    raise PermanentError(f"site {site_id} has no default document library")
                self._drive_id = drive.id
            return self._drive_id

    async def _item(self, url: str) -> DriveItem:
        item = await self._call(lambda: DriveItemItemRequestBuilder(self._adapter, url).get())
        if item is None or not item.id:
            raise TransientError("SharePoint answered without a driveItem")
        return item

    async def _folder(self, drive_id: str, segments: list[str]) -> str:
        """The id of the folder at ``segments``, created as needed (ids cached per path)."""
        key = "/".join(segments).casefold()
        if key in self._folder_ids:
            return self._folder_ids[key]
        if not segments:
            root = await self._call(lambda: self._client.drives.by_drive_id(drive_id).root.get())
            if root is None or not root.id:
                raise TransientError("SharePoint answered without the drive root")
            self._folder_ids[key] = root.id
            return root.id
        parent_id = await self._folder(drive_id, segments[:-1])
        name = segments[-1]
        children_url = f"{self._graph_url}/drives/{quote(drive_id, safe='')}/items/{quote(parent_id, safe='')}/children"
        body = DriveItem(name=name, folder=Folder(), additional_data={"@microsoft.graph.conflictBehavior": "fail"})
        try:
            created = await self._call(lambda: ChildrenRequestBuilder(self._adapter, children_url).post(body))
            folder_id = created.id if created else None
        except TransientError as exc:
            if not isinstance(exc.__cause__, ODataError) or _status(exc.__cause__) != 409:
                raise
            # nameAlreadyExists: someone (maybe a concurrent upload) made it; look it up.
            existing = await self._item(self._url(drive_id, segments))
            if existing.folder is None:
                raise PermanentError(f"a file is in the way of folder {'/'.join(segments)}") from exc
            folder_id = existing.id
        if not folder_id:
            raise TransientError("SharePoint answered a folder creation without an id")
        self._folder_ids[key] = folder_id
        return folder_id

    # ------------------------------------------------------------------------------- upload

    async def upload(self, job: UploadJob, save_state: SaveState) -> UploadResult:
        segments = self._segments(job.remote_path)
        drive_id = await self._drive()
        try:
            for attempt in (1, 2):
                parent_id = await self._folder(drive_id, segments[:-1])
                try:
                    item, quickxor, sha256, acknowledged = await self._transfer(
                        drive_id, parent_id, segments, job, save_state
                    )
                    break
                except TransientError as exc:
                    if attempt == 2 or _status(exc.__cause__) != 404:
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
        return self._verified("/".join(segments), item, quickxor, job.size, acknowledged=acknowledged)

    async def _transfer(
        self, drive_id: str, parent_id: str, segments: list[str], job: UploadJob, save_state: SaveState
    ) -> tuple[DriveItem, QuickXorHash, str, bool]:
        """Simple PUT up to 4 MiB, an upload session above; True when the upload's own answer carried the item."""
        if job.size > SIMPLE_UPLOAD_LIMIT:
            return await self._session_upload(drive_id, parent_id, segments, job, save_state)
        if (job.resume_state or {}).get("upload_url"):
            # Sessions are only started for larger files: this one changed; drop its session.
            await self._forget(job.resume_state or {}, save_state)
        return await self._simple_upload(drive_id, parent_id, segments[-1], job)

    def _verified(
        self, cloud_path: str, item: DriveItem, quickxor: QuickXorHash, size: int, *, acknowledged: bool
    ) -> UploadResult:
        """Compare SharePoint's quickXorHash with the one taken of the bytes as they were sent.

        A complete upload that SharePoint acknowledged with the stored item, whose hash differs
        because the library rewrote the file (see :func:`rewritten_by_server`), is
        ``server-modified``: synced, never retried in a loop. Any other mismatch is an error.
        """
        reported = item.file.hashes.quick_xor_hash if item.file and item.file.hashes else None
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
            elif acknowledged and rewritten_by_server(cloud_path, item.size, size):
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
                    f"SharePoint reports quickXorHash {reported} for {cloud_path}; the bytes sent hash to {local}"
                )
            remote_hash = f"quickxor:{reported}"
        return UploadResult(
            cloud_path=cloud_path,
            remote_id=item.id,
            remote_size=item.size if item.size is not None else size,
            remote_hash=remote_hash,
            verification=verification,  # type: ignore[arg-type]
        )

    async def _simple_upload(
        self, drive_id: str, parent_id: str, name: str, job: UploadJob
    ) -> tuple[DriveItem, QuickXorHash, str, bool]:
        """One PUT .../content, streamed from disk, hashing the bytes as they go out."""
        url = self._url(drive_id, [name], anchor=f"items/{quote(parent_id, safe='')}", suffix="/content")
        hashes: list[tuple[QuickXorHash, Any]] = []

        async def stream() -> AsyncIterator[bytes]:
            quickxor, sha256 = QuickXorHash(), hashlib.sha256()
            hashes.append((quickxor, sha256))
            sent = 0
            with job.local_file.open("rb") as reader:
                while sent < job.size:
                    chunk = await asyncio.to_thread(_read, reader, min(_READ_CHUNK, job.size - sent))
                    if not chunk:
                        raise FileChangedError(f"file shrank during upload: {sent} of {job.size} bytes")
                    quickxor.update(chunk)
                    sha256.update(chunk)
                    sent += len(chunk)
                    await self._pace_bytes(len(chunk))
                    yield chunk

        async def put() -> DriveItem | None:
            request = RequestInformation(Method.PUT)
            request.url = url
            request.headers.try_add("Content-Type", "application/octet-stream")
            request.headers.try_add("Content-Length", str(job.size))
            request.content = stream()  # type: ignore[assignment]  # httpx streams async iterables
            return await self._adapter.send_async(request, DriveItem, _ERRORS)

        item = await self._call(put)
        if item is None or not hashes:
            raise TransientError("SharePoint answered the upload without a driveItem")
        quickxor, sha256 = hashes[-1]
        return item, quickxor, sha256.hexdigest(), True

    async def _pace_bytes(self, count: int) -> None:
        await self._pacing.bandwidth.acquire_async(count)

    async def _create_session(self, drive_id: str, parent_id: str, name: str, save_state: SaveState) -> str:
        url = self._url(drive_id, [name], anchor=f"items/{quote(parent_id, safe='')}", suffix="/createUploadSession")
        body = CreateUploadSessionPostRequestBody(
            item=DriveItemUploadableProperties(additional_data={"@microsoft.graph.conflictBehavior": "replace"})
        )
        session = await self._call(lambda: CreateUploadSessionRequestBuilder(self._adapter, url).post(body))
        if session is None or not session.upload_url:
            raise TransientError("SharePoint answered createUploadSession without an uploadUrl")
        expires = session.expiration_date_time.isoformat() if session.expiration_date_time else None
        await save_state({"upload_url": session.upload_url, "expires": expires})
        log.debug("%s: upload session started for %s", self.name, name)
        return session.upload_url

    async def _upload_request(
        self, method: Method, upload_url: str, fragment: bytes = b"", content_range: str = ""
    ) -> dict[str, Any] | None:
        """One request to the pre-authenticated uploadUrl (no Authorization header)."""
        request = RequestInformation(method)
        request.url = upload_url
        if method == Method.PUT:
            request.headers.try_add("Content-Range", content_range)
            request.headers.try_add("Content-Type", "application/octet-stream")
            request.content = fragment
        raw = await self._upload_adapter.send_primitive_async(request, "bytes", _ERRORS)
        return json.loads(raw) if raw else None

    async def _session_offset(self, upload_url: str) -> int | None:
        """Where the session stands (GET uploadUrl); None when it expired or never existed."""
        try:
            state = await self._call(lambda: self._upload_request(Method.GET, upload_url), bearer=False)
        except TransientError as exc:
            if _status(exc.__cause__) == 404:
                return None
            raise
        return _parse_ranges((state or {}).get("nextExpectedRanges"))

    async def _session_upload(
        self, drive_id: str, parent_id: str, segments: list[str], job: UploadJob, save_state: SaveState
    ) -> tuple[DriveItem, QuickXorHash, str, bool]:
        """createUploadSession (or the saved one), then fragments of 10 x 320 KiB, in order."""
        upload_url: str | None = (job.resume_state or {}).get("upload_url")
        offset: int | None = 0
        if upload_url:
            offset = await self._session_offset(upload_url)
            if offset is None:
                log.info("%s: saved upload session is gone; starting over", self.name)
                await save_state(None)
                upload_url = None
        if not upload_url:
            upload_url = await self._create_session(drive_id, parent_id, segments[-1], save_state)
            offset = 0
        assert offset is not None
        quickxor, sha256 = QuickXorHash(), hashlib.sha256()
        try:
            with job.local_file.open("rb") as reader:
                await asyncio.to_thread(self._hash_prefix, reader, offset, quickxor, sha256)
                item = await self._send_fragments(upload_url, reader, offset, job.size, quickxor, sha256)
        except FileChangedError:
            await self._forget({"upload_url": upload_url}, save_state)
            raise
        acknowledged = item is not None
        if item is None:  # the last answer was lost and the session closed: look the file up
            item = await self._item(self._url(drive_id, segments))
        await save_state(None)
        return item, quickxor, sha256.hexdigest(), acknowledged

    @staticmethod
    def _hash_prefix(reader: IO[bytes], count: int, quickxor: QuickXorHash, sha256: Any) -> None:
        """Hash the bytes the server already holds, so the final hash covers the whole file."""
        remaining = count
        while remaining:
            chunk = reader.read(min(_READ_CHUNK, remaining))
            if not chunk:
                raise FileChangedError("file shrank below the resumed upload's offset")
            quickxor.update(chunk)
            sha256.update(chunk)
            remaining -= len(chunk)

    async def _send_fragments(
        self, upload_url: str, reader: IO[bytes], offset: int, size: int, quickxor: QuickXorHash, sha256: Any
    ) -> DriveItem | None:
        resyncs = 0
        while offset < size:
            fragment = await asyncio.to_thread(_read, reader, min(FRAGMENT_SIZE, size - offset))
            if len(fragment) != min(FRAGMENT_SIZE, size - offset):
                raise FileChangedError(f"file shrank during upload at byte {offset + len(fragment)}")
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
                if resyncs > _RESYNCS_PER_ATTEMPT:
                    raise
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
                return self._drive_item(answer)
            expected = _parse_ranges((answer or {}).get("nextExpectedRanges"))
            if expected is not None and expected != offset:
                raise TransientError(f"upload session expects byte {expected}, not {offset}")
        raise TransientError("upload session accepted every byte but returned no driveItem")

    @staticmethod
    def _drive_item(body: dict[str, Any]) -> DriveItem:
        """A driveItem from the final fragment's JSON, parsed by the SDK's own model."""
        return JsonParseNode(body).get_object_value(DriveItem)

    async def _forget(self, resume_state: dict[str, Any], save_state: SaveState) -> None:
        """Cancel a session that will not be finished and clear it from the ledger."""
        try:
            await self.abandon(resume_state)
        finally:
            await save_state(None)

    # ------------------------------------------------------------------------------- the rest

    async def abandon(self, resume_state: dict[str, Any]) -> None:
        upload_url = resume_state.get("upload_url")
        if not upload_url:
            return
        try:
            await self._call(lambda: self._upload_request(Method.DELETE, upload_url), bearer=False)
        except TransientError as exc:
            if _status(exc.__cause__) != 404:
                raise

    async def stat(self, remote_path: str) -> RemoteFile | None:
        segments = self._segments(remote_path)
        drive_id = await self._drive()
        try:
            item = await self._item(self._url(drive_id, segments))
        except TransientError as exc:
            if _status(exc.__cause__) == 404:
                return None
            raise
        if item.folder is not None:
            return None
        hashes = {}
        if item.file and item.file.hashes and item.file.hashes.quick_xor_hash:
            hashes["quickxor"] = item.file.hashes.quick_xor_hash
        return RemoteFile(cloud_path="/".join(segments), remote_id=item.id, size=item.size or 0, hashes=hashes)

    async def read(self, remote_path: str) -> bytes:
        segments = self._segments(remote_path)
        drive_id = await self._drive()
        url = self._url(drive_id, segments, suffix="/content")
        content = await self._call(lambda: ContentRequestBuilder(self._adapter, url).get())
        return content or b""

    async def close(self) -> None:
        self._pacing.close()
        await self._http.aclose()
        await self._credential.close()
