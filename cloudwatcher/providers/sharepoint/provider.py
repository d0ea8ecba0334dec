"""The SharePoint provider: uploads plus stat and read of remote files."""

from __future__ import annotations

from kiota_abstractions.method import Method

from cloudwatcher.providers.base import RemoteFile, TransientError
from cloudwatcher.providers.sharepoint.errors import status_of
from cloudwatcher.providers.sharepoint.items import send
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
        if item.is_folder:
            return None
        hashes = {"quickxor": item.quick_xor_hash} if item.quick_xor_hash else {}
        return RemoteFile(cloud_path="/".join(segments), remote_id=item.id, size=item.size or 0, hashes=hashes)

    async def read(self, remote_path: str) -> bytes:
        segments = self._segments(remote_path)
        drive_id = await self._drive()
        url = self._url(drive_id, segments, suffix="/content")
        content = await self._call(lambda: send(self._adapter, Method.GET, url))
        return content or b""

    async def remove(self, remote_path: str) -> None:
        """Delete one file (``cloudwatcher check``'s probe); none there is not an error."""
        segments = self._segments(remote_path)
        drive_id = await self._drive()
        url = self._url(drive_id, segments)
        try:
            await self._call(lambda: send(self._adapter, Method.DELETE, url))
        except TransientError as exc:
            if status_of(exc.__cause__) != 404:
                raise

    async def free_bytes(self) -> int | None:
        """The drive's ``quota.remaining``, when Graph reports one."""
        drive = await self._get(self._drive_url(await self._drive()))
        remaining = (drive.get("quota") or {}).get("remaining")
        return int(remaining) if remaining is not None else None

    async def flush(self) -> None:
        """Nothing to do: an acknowledged upload is already stored by the service."""
        return None

    async def close(self) -> None:
        self._pacing.close()
        await self._http.aclose()
        await self._credential.close()
