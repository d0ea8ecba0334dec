"""The SharePoint provider: uploads plus stat and read of remote files."""

from __future__ import annotations

from msgraph.generated.drives.item.items.item.content.content_request_builder import ContentRequestBuilder
from msgraph.generated.drives.item.items.item.drive_item_item_request_builder import DriveItemItemRequestBuilder

from cloudwatcher.providers.base import RemoteFile, TransientError
from cloudwatcher.providers.sharepoint.errors import status_of
from cloudwatcher.providers.sharepoint.upload import GraphUploads


class SharePointProvider(GraphUploads):
    """A SharePoint document library (or OneDrive for Business drive) as a mirror target."""

    async def stat(self, remote_path: str) -> RemoteFile | None:
        segments = self._segments(remote_path)
        drive_id = await self._drive()
        try:
            item = await self._item(self._url(drive_id, segments))
        except TransientError as exc:
            if status_of(exc.__cause__) == 404:
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

    async def remove(self, remote_path: str) -> None:
        """Delete one file (``cloudwatcher check``'s probe); none there is not an error."""
        segments = self._segments(remote_path)
        drive_id = await self._drive()
        url = self._url(drive_id, segments)
        try:
            await self._call(lambda: DriveItemItemRequestBuilder(self._adapter, url).delete())
        except TransientError as exc:
            if status_of(exc.__cause__) != 404:
                raise

    async def free_bytes(self) -> int | None:
        """The drive's ``quota.remaining``, when Graph reports one."""
        drive_id = await self._drive()
        drive = await self._call(lambda: self._client.drives.by_drive_id(drive_id).get())
        quota = drive.quota if drive is not None else None
        return quota.remaining if quota is not None and quota.remaining is not None else None

    async def flush(self) -> None:
        """Nothing to do: an acknowledged upload is already stored by the service."""
        return None

    async def close(self) -> None:
        self._pacing.close()
        await self._http.aclose()
        await self._credential.close()
