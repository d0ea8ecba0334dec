"""How the domain touches the daemon's ledger (``cloud_file_refs``): links and the processed mark.

A ledger file has one row per target; every statement here addresses all rows of one file
version by ``(local_path, content_sha256)``: ``idx_cfr_local_path`` finds the path's few versions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from uuid import UUID

import asyncpg

from cloudwatcher.domain.files import DroppedFile
from cloudwatcher.gateway import RefusedPathError, tree_holding
from cloudwatcher.schema.sql import query

MARK_PROCESSED = query("request_links", "mark_processed")
LINK_REQUEST = query("request_links", "link_request")
LINK_ATTACHMENTS = query("request_links", "link_attachments")
LOCK_DEVICE_LINKS = query("request_links", "lock_device_links")
REMEMBER_ATTACHMENTS = query("request_links", "remember_attachments")
LINK_RECORDED_ATTACHMENTS = query("request_links", "link_recorded_attachments")
LINK_UNLINKED_ATTACHMENTS = query("request_links", "link_unlinked_attachments")
LINK_RESPONSE = query("request_links", "link_response")


async def mark_processed(connection: asyncpg.Connection, file: DroppedFile) -> None:
    await connection.execute(MARK_PROCESSED, file.local_path, file.content_sha256)


async def link_request(connection: asyncpg.Connection, file: DroppedFile, request_id: UUID) -> None:
    await connection.execute(LINK_REQUEST, file.local_path, file.content_sha256, request_id)


def attachment_paths(file: DroppedFile, attachments: Sequence[str]) -> list[str]:
    """Candidate ledger paths of attachments: relative to ``requests/`` and to the envelope's folder."""
    device_root = f"{file.device_id}/requests"
    folder = file.local_path.rsplit("/", 1)[0]
    paths: list[str] = []
    for attachment in attachments:
        for base in (device_root, folder):
            candidate = f"{base}/{attachment}"
            if candidate not in paths:
                paths.append(candidate)
    return paths


async def link_attachments(
    connection: asyncpg.Connection, file: DroppedFile, attachments: Sequence[str], request_id: UUID
) -> None:
    """Link the attachments already recorded, and remember the paths for those still to come."""
    if attachments:
        paths = attachment_paths(file, attachments)
        await connection.execute(LOCK_DEVICE_LINKS, [file.device_id])
        await connection.execute(REMEMBER_ATTACHMENTS, paths, request_id)
        await connection.execute(LINK_ATTACHMENTS, paths, request_id)


async def link_recorded_attachments(connection: asyncpg.Connection, versions: Sequence[tuple[str, str, str]]) -> None:
    """Link attachment versions ``(device_id, local_path, sha256)`` recorded after their envelope."""
    if not versions:
        return
    async with connection.transaction():
        await connection.execute(LOCK_DEVICE_LINKS, sorted({device for device, _, _ in versions}))
        await connection.execute(
            LINK_RECORDED_ATTACHMENTS, [path for _, path, _ in versions], [sha for _, _, sha in versions]
        )


async def link_unlinked_attachments(connection: asyncpg.Connection) -> None:
    """Link every recorded attachment a request names that has no request yet (start-up catch-up)."""
    await connection.execute(LINK_UNLINKED_ATTACHMENTS)


async def link_response(connection: asyncpg.Connection, file: DroppedFile, response_id: UUID) -> None:
    await connection.execute(LINK_RESPONSE, file.local_path, file.content_sha256, response_id)


def read_version(file: DroppedFile, limit: int) -> bytes | None:
    """The file's bytes if it still holds the recorded version (else None: gone, changed since,
    or refused by the gateway: a link in its path, not a regular file).

    Reads at most ``limit + 1`` bytes, through :mod:`cloudwatcher.gateway`.
    """
    try:
        data = tree_holding(file.absolute_path, file.local_path).read_file(file.local_path, limit + 1)
    except (OSError, RefusedPathError):
        return None
    if hashlib.sha256(data).hexdigest() != file.content_sha256:
        return None
    return data
