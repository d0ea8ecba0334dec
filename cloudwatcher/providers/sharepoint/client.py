"""The Graph client of one target: SDK adapters, paths, error mapping per call, the drive and its folders."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import quote, urlsplit

import httpx
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError, ServiceResponseError
from kiota_abstractions.api_error import APIError
from kiota_abstractions.authentication import AnonymousAuthenticationProvider
from kiota_abstractions.method import Method
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from kiota_http.middleware import BaseMiddleware, ParametersNameDecodingHandler, RedirectHandler, UserAgentHandler
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph_core import GraphClientFactory

from cloudwatcher.providers.base import PermanentError, TransientError
from cloudwatcher.providers.pacing import TargetPacing
from cloudwatcher.providers.sharepoint.config import SharePointTarget
from cloudwatcher.providers.sharepoint.errors import from_api_error, from_token_error, status_of
from cloudwatcher.providers.sharepoint.items import JSON, DriveItem, send_json
from cloudwatcher.providers.sharepoint.names import MAX_PATH_LENGTH, sanitize_segment
from cloudwatcher.providers.sharepoint.signin import sign_in_credential
from cloudwatcher.providers.sharepoint.transport import RenewableCredential, RequestPacing
from cloudwatcher.providers.trust import target_trust

log = logging.getLogger(__name__)

T = TypeVar("T")


class GraphBase:
    """The target's SDK clients and lookups; the layers above add the uploads."""

    case_insensitive = True
    renames_paths = True  # forbidden characters and names are replaced (names.py)

    def __init__(self, config: SharePointTarget, *, concurrency: int = 4) -> None:
        self.name = config.name
        self._config = config
        self._graph_url = config.graph_url.rstrip("/")
        graph_host = urlsplit(self._graph_url).hostname or ""
        self._root = [sanitize_segment(part) for part in config.root.split("/") if part]
        trust = target_trust(config.ca_bundle, target=config.name)
        self._credential = RenewableCredential(lambda: sign_in_credential(config, trust.bundle))
        scope = f"https://{graph_host}/.default" if graph_host else "https://graph.microsoft.com/.default"
        auth = AzureIdentityAuthenticationProvider(
            self._credential,  # an AsyncTokenCredential by shape
            scopes=[scope],
            allowed_hosts=[graph_host],
        )
        self._pacing = TargetPacing.for_target(config)
        middleware: list[BaseMiddleware] = [RedirectHandler(), ParametersNameDecodingHandler(), UserAgentHandler()]
        if self._pacing.requests.limited:
            middleware.append(RequestPacing(self._pacing.requests))
        self._http = GraphClientFactory.create_with_custom_middleware(
            middleware=middleware,
            client=httpx.AsyncClient(
                verify=trust.ssl_context(),
                timeout=httpx.Timeout(120.0, connect=20.0),
                limits=httpx.Limits(max_connections=max(4, 2 * concurrency)),
            ),
        )
        self._adapter = GraphRequestAdapter(auth, client=self._http)
        self._adapter.base_url = self._graph_url
        self._upload_adapter = GraphRequestAdapter(AnonymousAuthenticationProvider(), client=self._http)
        # Built for what its constructor sets up (the JSON and text parse nodes the adapters read
        # error bodies with), not for calls: its request builders answer with generated models,
        # whose first use costs 32 MB of imports (see items.py).
        GraphServiceClient(request_adapter=self._adapter)
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
        return f"{self._drive_url(drive_id)}/{anchor}:/{path}:{suffix}"

    def _drive_url(self, drive_id: str) -> str:
        return f"{self._graph_url}/drives/{quote(drive_id, safe='')}"

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
                raise from_api_error(exc) from exc
            except ClientAuthenticationError as exc:
                raise from_token_error(exc) from exc
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
                url = f"{self._graph_url}/sites/{quote(site_id, safe='')}/drive"
                drive = await self._get(url)
                if not drive.get("id"):
                    raise PermanentError(f"site {site_id} has no default document library")
                self._drive_id = str(drive["id"])
            return self._drive_id

    async def _get(self, url: str) -> JSON:
        """GET ``url`` from Graph: its JSON answer (empty when it sent none)."""
        return await self._call(lambda: send_json(self._adapter, Method.GET, url)) or {}

    async def _item(self, url: str) -> DriveItem:
        item = DriveItem.from_json(await self._get(url))
        if not item.id:
            raise TransientError("SharePoint answered without a driveItem")
        return item

    async def _folder(self, drive_id: str, segments: list[str]) -> str:
        """The id of the folder at ``segments``, created as needed (ids cached per path)."""
        key = "/".join(segments).casefold()
        if key in self._folder_ids:
            return self._folder_ids[key]
        if not segments:
            root = await self._get(f"{self._drive_url(drive_id)}/root")
            if not root.get("id"):
                raise TransientError("SharePoint answered without the drive root")
            self._folder_ids[key] = str(root["id"])
            return self._folder_ids[key]
        parent_id = await self._folder(drive_id, segments[:-1])
        name = segments[-1]
        children_url = f"{self._drive_url(drive_id)}/items/{quote(parent_id, safe='')}/children"
        body = {"name": name, "folder": {}, "@microsoft.graph.conflictBehavior": "fail"}
        try:
            created = await self._call(lambda: send_json(self._adapter, Method.POST, children_url, body))
            folder_id = str((created or {}).get("id") or "")
        except TransientError as exc:
            if not isinstance(exc.__cause__, ODataError) or status_of(exc.__cause__) != 409:
                raise
            # nameAlreadyExists: someone (maybe a concurrent upload) made it; look it up.
            existing = await self._item(self._url(drive_id, segments))
            if not existing.is_folder:
                raise PermanentError(f"a file is in the way of folder {'/'.join(segments)}") from exc
            folder_id = existing.id or ""
        if not folder_id:
            raise TransientError("SharePoint answered a folder creation without an id")
        self._folder_ids[key] = folder_id
        return folder_id
