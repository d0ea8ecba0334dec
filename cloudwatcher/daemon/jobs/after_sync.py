"""The after-sync policy (``after_sync = keep | archive | delete``, docs/configuration.md).

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
from cloudwatcher.daemon.upload.filters import target_takes
from cloudwatcher.daemon.upload.remote_names import with_number
from cloudwatcher.gateway import DeviceTree, RefusedPathError, device_tree, escaped
from cloudwatcher.hashing import sha256_of_fd
from cloudwatcher.layout import AREAS, is_device_id
from cloudwatcher.schema import queries
from cloudwatcher.schema.sql import query

__all__ = ["apply_after_sync", "archive_destination", "move_without_overwriting"]

log = logging.getLogger(__name__)

BATCH_SIZE = 500

LOCK_ROWS = query("after_sync", "lock_rows")


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
    tree = device_tree(settings.watch_path)
    async with pool.acquire() as connection, connection.transaction():
        rows = await connection.fetch(LOCK_ROWS, local_path)
        newest = [row for row in rows if row["content_sha256"] == sha256]
        if not rows or rows[0]["content_sha256"] != sha256:
            return 0  # a newer version appeared meanwhile
        if any(row["sync_status"] != "synced" or row["verification"] is None for row in newest):
            return 0  # e.g. re-queued by a retry or a re-recording since the candidates were listed
        expected = (newest[0]["file_size_bytes"], newest[0]["file_mtime_ns"])
        try:
            found = await asyncio.to_thread(_still_the_version, tree, local_path, sha256, expected)
        except FileNotFoundError:
            await connection.execute(queries.NOTE_FILE_MOVED, local_path, sha256, "missing", None)
            return 0
        except RefusedPathError as refused:
            log.warning("after_sync: leaving %s where it is: %s", escaped(local_path), refused.why)
            return 0
        if found is None:
            return 0  # changed on disk: the recorder gives it a new row
        folder, name = found
        try:
            if settings.after_sync == "archive":
                destination = archive_destination(settings.state_dir, local_path)
                # The ledger change is written first and committed after the move: if the move
                # fails nothing changes; if the commit fails, the next round finds the file gone.
                placed = await asyncio.to_thread(move_without_overwriting, folder, name, destination)
                await connection.execute(queries.NOTE_FILE_MOVED, local_path, sha256, "archived", str(placed))
                log.info("after_sync: archived %s to %s", local_path, placed)
            else:
                await connection.execute(queries.NOTE_FILE_MOVED, local_path, sha256, "deleted", None)
                await asyncio.to_thread(os.unlink, name, dir_fd=folder)
                log.info("after_sync: deleted %s", local_path)
        finally:
            os.close(folder)
        await asyncio.to_thread(_prune_empty_folders, tree, local_path)
        return 1


def _still_the_version(
    tree: DeviceTree, local_path: str, sha256: str, expected: tuple[int, int]
) -> tuple[int, str] | None:
    """The descriptor of the file's folder and its name when the file still holds the recorded
    version (size, mtime, sha256), else None. The folder is opened through the gateway and the
    file checked in it, so the move or removal that follows acts on that folder, not on
    wherever a link swapped into the path since would lead."""
    parent, _, name = local_path.rpartition("/")
    folder = tree.open_folder(parent)
    try:
        fd, info = tree.open_file(local_path)
        try:
            same = (info.st_size, info.st_mtime_ns) == expected and sha256_of_fd(fd, expected[0]) == sha256
            held = os.stat(name, dir_fd=folder, follow_symlinks=False)
            same = same and (held.st_dev, held.st_ino) == (info.st_dev, info.st_ino)
        finally:
            os.close(fd)
    except BaseException:
        os.close(folder)
        raise
    if not same:
        os.close(folder)
        return None
    return folder, name


def archive_destination(state_dir: Path, local_path: str) -> Path:
    """``<state_dir>/archive/<device_id>/<requests|responses>/<relative path>``."""
    return state_dir.joinpath("archive", *local_path.split("/"))


def move_without_overwriting(folder: int, name: str, destination: Path) -> Path:
    """Move ``name`` (in the open ``folder``) to ``destination``, or to ``name (2).ext``... when
    that exists; return where.

    A hard link is atomic and refuses an existing name, so nothing is ever overwritten; across
    filesystems the file is copied next to its destination first, then linked into place.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    temp = None
    try:
        for number in range(1, 10_000):
            candidate = destination if number == 1 else Path(with_number(str(destination), number))
            try:
                if temp is None:
                    os.link(name, candidate, src_dir_fd=folder, follow_symlinks=False)
                else:
                    os.link(temp, candidate)
            except FileExistsError:
                continue
            except OSError as exc:
                if exc.errno != errno.EXDEV or temp is not None:
                    raise
                temp = destination.with_name(f".{destination.name}.cloudwatcher-archive.tmp")
                _copy_out(folder, name, temp)
                try:
                    os.link(temp, candidate)
                except FileExistsError:
                    continue
            os.unlink(name, dir_fd=folder)
            return candidate
        raise FileExistsError(f"no free name for {destination}")
    finally:
        if temp is not None:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()


def _copy_out(folder: int, name: str, temp: Path) -> None:
    """Copy ``name`` (in ``folder``, never through a link) to ``temp``, with its times."""
    source = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder)
    with os.fdopen(source, "rb") as reader, open(temp, "wb") as writer:
        shutil.copyfileobj(reader, writer)
        info = os.fstat(reader.fileno())
    os.utime(temp, ns=(info.st_atime_ns, info.st_mtime_ns))


def _prune_empty_folders(tree: DeviceTree, local_path: str) -> None:
    """Remove folders the move left empty, below ``<device>/<requests|responses>`` (kept); each
    through its parent's descriptor, opened by the gateway."""
    parts = local_path.split("/")[:-1]
    while len(parts) > 2 and parts[1] in AREAS:
        try:
            parent = tree.open_folder("/".join(parts[:-1]))
        except (OSError, RefusedPathError):
            return
        try:
            os.rmdir(parts[-1], dir_fd=parent)
        except OSError:
            return
        finally:
            os.close(parent)
        parts.pop()
