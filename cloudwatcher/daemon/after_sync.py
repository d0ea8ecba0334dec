"""The after-sync policy (``after_sync = keep | archive | delete``, CONTRACT.md section 3).

A dropped file is archived or deleted only when all of this holds, checked again with the
file's ledger rows locked, right before it is touched:

- every target that takes the file has a row for its newest version, and every such row is
  ``synced`` with a verification (``hash``, ``transport`` or ``server-modified``);
- its request, if it belongs to one, is answered (a request file: its request is completed or
  failed, or has a response; an attachment: the same for the request it is linked to; a
  response file: ingested);
- its last upload is older than ``after_sync_min_age_seconds``;
- the file on disk is still that version (size, mtime and sha256).

``archive`` moves it to ``<state_dir>/archive/<device_id>/<requests|responses>/<relative
path>``, never over an existing file (a ``name (2).ext`` variant is taken instead); ``delete``
removes it. The ledger keeps its rows and notes where the file went (``local_state``,
``archived_path``); rows of older versions of the path become ``missing``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shutil
from pathlib import Path

import asyncpg

from cloudwatcher.config import Settings
from cloudwatcher.daemon.filters import target_takes
from cloudwatcher.daemon.layout import AREAS, is_device_id
from cloudwatcher.daemon.naming import with_number
from cloudwatcher.daemon.recorder import sha256_of_path
from cloudwatcher.schema import queries

__all__ = ["apply_after_sync", "archive_destination", "move_without_overwriting"]

log = logging.getLogger(__name__)

BATCH_SIZE = 500

LOCK_ROWS = """
SELECT content_sha256, sync_status, verification, created_at, file_size_bytes, file_mtime_ns
FROM cloud_file_refs
WHERE local_path = $1 AND local_state = 'present'
ORDER BY created_at DESC
FOR UPDATE
"""


async def apply_after_sync(pool: asyncpg.Pool, settings: Settings) -> int:
    """Archive or delete the files of this watch root that are done; return how many were handled.

    Safe to run on every daemon (each handles the files under its own ``watch_root``; the row
    locks keep two daemons sharing one root from handling a file twice). Does nothing for
    ``keep``.
    """
    if settings.after_sync == "keep":
        return 0
    devices = await asyncio.to_thread(_devices, settings.watch_path)
    if not devices:
        return 0
    candidates = await pool.fetch(
        queries.AFTER_SYNC_CANDIDATES, float(settings.after_sync_min_age_seconds), devices, BATCH_SIZE
    )
    handled = 0
    for candidate in candidates:
        local_path = candidate["local_path"]
        wanted = {t.name for t in settings.target_list if target_takes(local_path, t.include, t.exclude)}
        if not wanted or not wanted <= set(candidate["targets"]):
            continue  # a target that takes the file has no row for this version (yet)
        try:
            handled += await _handle(pool, settings, local_path, candidate["content_sha256"])
        except OSError as exc:
            log.warning("after_sync %s: cannot handle %s: %s", settings.after_sync, local_path, exc)
    if handled:
        log.info("after_sync: %s %d file(s)", "archived" if settings.after_sync == "archive" else "deleted", handled)
    return handled


def _devices(watch_root: Path) -> list[str]:
    try:
        with os.scandir(watch_root) as entries:
            return [e.name for e in entries if is_device_id(e.name) and e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []


async def _handle(pool: asyncpg.Pool, settings: Settings, local_path: str, sha256: str) -> int:
    source = settings.watch_path / local_path
    async with pool.acquire() as connection, connection.transaction():
        rows = await connection.fetch(LOCK_ROWS, local_path)
        newest = [row for row in rows if row["content_sha256"] == sha256]
        if not rows or rows[0]["content_sha256"] != sha256:
            return 0  # a newer version appeared meanwhile
        if any(row["sync_status"] != "synced" or row["verification"] is None for row in newest):
            return 0  # e.g. re-queued by a retry or a re-recording since the candidates were listed
        expected = (newest[0]["file_size_bytes"], newest[0]["file_mtime_ns"])
        try:
            info = os.lstat(source)
        except FileNotFoundError:
            await connection.execute(queries.NOTE_FILE_MOVED, local_path, sha256, "missing", None)
            return 0
        if (info.st_size, info.st_mtime_ns) != expected:
            return 0  # changed on disk: the recorder gives it a new row
        if await asyncio.to_thread(sha256_of_path, source) != sha256:
            return 0
        if settings.after_sync == "archive":
            destination = archive_destination(settings.state_dir, local_path)
            # The ledger change is written first and committed after the move: if the move
            # fails nothing changes; if the commit fails, the next round finds the file gone.
            placed = await asyncio.to_thread(move_without_overwriting, source, destination)
            await connection.execute(queries.NOTE_FILE_MOVED, local_path, sha256, "archived", str(placed))
            log.info("after_sync: archived %s to %s", local_path, placed)
        else:
            await connection.execute(queries.NOTE_FILE_MOVED, local_path, sha256, "deleted", None)
            await asyncio.to_thread(source.unlink)
            log.info("after_sync: deleted %s", local_path)
        await asyncio.to_thread(_prune_empty_folders, source.parent, settings.watch_path)
        return 1


def archive_destination(state_dir: Path, local_path: str) -> Path:
    """``<state_dir>/archive/<device_id>/<requests|responses>/<relative path>``."""
    return state_dir.joinpath("archive", *local_path.split("/"))


def move_without_overwriting(source: Path, destination: Path) -> Path:
    """Move ``source`` to ``destination``, or to ``name (2).ext``... when that exists; return where.

    A hard link is atomic and refuses an existing name, so nothing is ever overwritten; across
    filesystems the file is copied next to its destination first, then linked into place.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    staged, temp = source, None
    try:
        for number in range(1, 10_000):
            candidate = destination if number == 1 else Path(with_number(str(destination), number))
            try:
                os.link(staged, candidate, follow_symlinks=False)
            except FileExistsError:
                continue
            except OSError as exc:
                if exc.errno != errno.EXDEV or temp is not None:
                    raise
                temp = destination.with_name(f".{destination.name}.cloudwatcher-archive.tmp")
                shutil.copy2(source, temp)
                staged = temp
                try:
                    os.link(staged, candidate)
                except FileExistsError:
                    continue
            source.unlink()
            return candidate
        raise FileExistsError(f"no free name for {destination}")
    finally:
        if temp is not None:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()


def _prune_empty_folders(folder: Path, watch_root: Path) -> None:
    """Remove folders the move left empty, below ``<device>/<requests|responses>`` (kept)."""
    while True:
        relative = folder.relative_to(watch_root).parts
        if len(relative) <= 2 or relative[1] not in AREAS:
            return
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
