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

MARK_PROCESSED = """
UPDATE cloud_file_refs SET processed_at = now()
WHERE local_path = $1 AND content_sha256 = $2 AND processed_at IS NULL
"""

LINK_REQUEST = """
UPDATE cloud_file_refs SET request_id = $3
WHERE local_path = $1 AND content_sha256 = $2 AND request_id IS DISTINCT FROM $3
"""

# The newest version of each attachment path (all its targets' rows).
LINK_ATTACHMENTS = """
UPDATE cloud_file_refs c SET request_id = $2
FROM (
    SELECT DISTINCT ON (local_path) local_path, content_sha256
    FROM cloud_file_refs
    WHERE local_path = ANY($1::text[]) AND file_type = 'attachment'
    ORDER BY local_path, created_at DESC
) newest
WHERE c.local_path = newest.local_path AND c.content_sha256 = newest.content_sha256
  AND c.request_id IS DISTINCT FROM $2
"""

LINK_RESPONSE = """
UPDATE cloud_file_refs SET response_id = $3, processed_at = COALESCE(processed_at, now())
WHERE local_path = $1 AND content_sha256 = $2
"""


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
    if attachments:
        await connection.execute(LINK_ATTACHMENTS, attachment_paths(file, attachments), request_id)


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
