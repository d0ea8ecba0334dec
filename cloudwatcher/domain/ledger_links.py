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

# An attachment and its envelope may be recorded in either order, by concurrent transactions.
# Both sides take this per-device lock before they link, so that whichever commits second sees
# the other's rows: the envelope's named paths, or the attachment's ledger rows.
LOCK_DEVICE_LINKS = """
SELECT pg_advisory_xact_lock(hashtext('cloudwatcher.attachments'), hashtext(d)) FROM unnest($1::text[]) AS d
"""

REMEMBER_ATTACHMENTS = """
INSERT INTO request_attachments (request_id, local_path)
SELECT $2, p FROM unnest($1::text[]) AS p
ON CONFLICT DO NOTHING
"""

# Recorded attachment versions, linked to the newest request that names their path.
LINK_RECORDED_ATTACHMENTS = """
UPDATE cloud_file_refs c SET request_id = named.request_id
FROM (
    SELECT DISTINCT ON (a.local_path) a.local_path, a.request_id
    FROM request_attachments a
    WHERE a.local_path = ANY($1::text[])
    ORDER BY a.local_path, a.created_at DESC
) named, unnest($1::text[], $2::text[]) AS v(local_path, sha256)
WHERE c.local_path = v.local_path AND c.content_sha256 = v.sha256 AND named.local_path = v.local_path
  AND c.file_type = 'attachment' AND c.request_id IS DISTINCT FROM named.request_id
"""

# At start-up: versions recorded just before a crash, whose link the linker never wrote.
LINK_UNLINKED_ATTACHMENTS = """
UPDATE cloud_file_refs c SET request_id = named.request_id
FROM (
    SELECT DISTINCT ON (a.local_path) a.local_path, a.request_id
    FROM request_attachments a
    ORDER BY a.local_path, a.created_at DESC
) named
WHERE c.local_path = named.local_path AND c.file_type = 'attachment' AND c.request_id IS NULL
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
