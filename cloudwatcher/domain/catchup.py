"""``unprocessed_files``: what the daemon must still hand to the domain after a start or an outage."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from cloudwatcher.domain.files import DroppedFile
from cloudwatcher.schema.sql import query

UNPROCESSED = query("requests", "unprocessed")


async def unprocessed_files(connection: asyncpg.Connection, watch_root: Path) -> list[DroppedFile]:
    """Request and response files recorded in the ledger but not yet processed, oldest first.

    Daemons with separate watch roots may share the database; a device belongs to one watch
    root, so files of devices that have no folder under ``watch_root`` are someone else's.
    """
    files: list[DroppedFile] = []
    present: dict[str, bool] = {}
    for row in await connection.fetch(UNPROCESSED):
        device = row["device_id"]
        if device not in present:
            present[device] = (watch_root / device).is_dir()
        if not present[device]:
            continue
        local_path: str = row["local_path"]
        if row["file_type"] == "request" and not local_path.endswith(".json"):
            continue
        files.append(
            DroppedFile(
                device_id=device,
                local_path=local_path,
                absolute_path=watch_root.joinpath(*local_path.split("/")),
                content_sha256=row["content_sha256"].strip(),
                size=row["file_size_bytes"],
                kind=row["file_type"],
            )
        )
    return files
