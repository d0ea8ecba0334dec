"""after_sync = archive | delete against the real database and real files: never before every
target verified the file and its request is answered, never over an existing file."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from cloudwatcher.config import Settings
from cloudwatcher.daemon.jobs.after_sync import apply_after_sync
from cloudwatcher.daemon.ledger.store import FileVersion, Ledger, SyncedRow
from cloudwatcher.layout import FileKind
from tests.support.daemon_process import DaemonProcess

CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog.json"


def settings_for(tmp_path: Path, policy: str, *, targets: list[dict[str, Any]] | None = None, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "state_dir": tmp_path / "state",
        "watch_root": tmp_path / "inbox",
        "after_sync": policy,
        "after_sync_min_age_seconds": 3600,
        "targets": targets
        or [
            {"name": "one", "provider": "local", "root": str(tmp_path / "m1")},
            {"name": "two", "provider": "local", "root": str(tmp_path / "m2")},
        ],
    }
    return Settings(**values, **extra)


async def drop(pool: asyncpg.Pool, settings: Settings, local_path: str, data: bytes, targets: list[str]) -> Path:
    """Write the file and record it for ``targets`` (rows pending)."""
    path = settings.watch_path / local_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    info = path.stat()
    kind: FileKind = (
        "response" if "/responses/" in local_path else "request" if local_path.endswith(".json") else "attachment"
    )
    version = FileVersion(
        local_path, local_path.split("/")[0], kind, hashlib.sha256(data).hexdigest(), len(data), info.st_mtime_ns
    )
    await Ledger(pool).record([(target, "local", version) for target in targets])
    return path


async def sync(pool: asyncpg.Pool, target: str, *, hours_ago: float = 2.0) -> None:
    """Every pending row of ``target`` synced and verified, ``hours_ago`` hours ago."""
    ledger = Ledger(pool)
    rows = await ledger.claim(target, 1000, 30, None)
    await ledger.mark_synced(
        [SyncedRow(r.id, r.claim_token, f"/m/{r.local_path}", None, r.size, "sha256:x", "hash") for r in rows], None
    )
    await pool.execute(
        "UPDATE cloud_file_refs SET uploaded_at = now() - make_interval(secs => $2) WHERE target = $1",
        target,
        hours_ago * 3600,
    )


async def states(pool: asyncpg.Pool, local_path: str) -> set[tuple[str, str | None]]:
    rows = await pool.fetch("SELECT local_state, archived_path FROM cloud_file_refs WHERE local_path = $1", local_path)
    return {(row["local_state"], row["archived_path"]) for row in rows}


async def test_archive_moves_a_file_every_target_verified_keeping_the_layout(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, "archive")
    source = await drop(pool, settings, "truck-1/requests/photos/day 1/a.jpg", b"jpeg", ["one", "two"])
    await sync(pool, "one")
    await sync(pool, "two")
    assert await apply_after_sync(pool, settings) == 1
    archived = tmp_path / "state/archive/truck-1/requests/photos/day 1/a.jpg"
    assert archived.read_bytes() == b"jpeg" and not source.exists()
    assert await states(pool, "truck-1/requests/photos/day 1/a.jpg") == {("archived", str(archived))}
    assert not (tmp_path / "inbox/truck-1/requests/photos").exists()  # emptied folders go
    assert (tmp_path / "inbox/truck-1/requests").is_dir()  # the drop folder stays
    assert await apply_after_sync(pool, settings) == 0


async def test_nothing_is_touched_before_every_target_verified_it(pool: asyncpg.Pool, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "delete")
    source = await drop(pool, settings, "truck-1/requests/a.bin", b"a", ["one", "two"])
    await sync(pool, "one")
    assert await apply_after_sync(pool, settings) == 0  # "two" is still pending
    failing = (await Ledger(pool).claim("two", 10, 30, None))[0]
    await pool.execute(
        "UPDATE cloud_file_refs SET sync_status = 'failed', lease_expires_at = NULL WHERE id = $1", failing.id
    )
    assert await apply_after_sync(pool, settings) == 0  # failed (even gave up) is not verified
    assert source.exists()
    await pool.execute("UPDATE cloud_file_refs SET sync_status = 'pending' WHERE id = $1", failing.id)
    await sync(pool, "two")
    assert await apply_after_sync(pool, settings) == 1
    assert not source.exists()
    assert await states(pool, "truck-1/requests/a.bin") == {("deleted", None)}


async def test_a_configured_target_without_a_row_yet_holds_the_file_back(pool: asyncpg.Pool, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "delete")
    source = await drop(pool, settings, "truck-1/requests/a.bin", b"a", ["one"])  # "two" not recorded yet
    await sync(pool, "one")
    assert await apply_after_sync(pool, settings) == 0
    assert source.exists()
    only_one = settings_for(
        tmp_path,
        "delete",
        targets=[
            {"name": "one", "provider": "local", "root": str(tmp_path / "m1")},
            {"name": "two", "provider": "local", "root": str(tmp_path / "m2"), "exclude": ["**/*.bin"]},
        ],
    )
    assert await apply_after_sync(pool, only_one) == 1  # "two" never takes .bin files


async def test_files_stay_for_the_minimum_age_after_their_last_upload(pool: asyncpg.Pool, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "archive")
    source = await drop(pool, settings, "truck-1/requests/a.bin", b"a", ["one", "two"])
    await sync(pool, "one", hours_ago=5)
    await sync(pool, "two", hours_ago=0.5)  # the last upload is younger than an hour
    assert await apply_after_sync(pool, settings) == 0
    assert source.exists()


async def test_a_request_file_waits_until_its_request_is_answered(pool: asyncpg.Pool, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "archive")
    local_path = "truck-1/requests/order.json"
    source = await drop(pool, settings, local_path, b'{"type": "custom"}', ["one", "two"])
    await sync(pool, "one")
    await sync(pool, "two")
    assert await apply_after_sync(pool, settings) == 0  # not ingested yet
    request_id: UUID = await pool.fetchval(
        "INSERT INTO requests (device_id, request_type, status, local_path) VALUES ('truck-1', 'custom', 'pending', $1)"
        " RETURNING id",
        local_path,
    )
    await pool.execute(
        "UPDATE cloud_file_refs SET request_id = $1, processed_at = now() WHERE local_path = $2", request_id, local_path
    )
    attachment = await drop(pool, settings, "truck-1/requests/order-photo.jpg", b"photo", ["one", "two"])
    await pool.execute("UPDATE cloud_file_refs SET request_id = $1 WHERE local_path LIKE '%photo.jpg'", request_id)
    await sync(pool, "one")
    await sync(pool, "two")
    assert await apply_after_sync(pool, settings) == 0  # pending: an external processor has not answered
    assert source.exists() and attachment.exists()
    await pool.execute(
        "INSERT INTO responses (request_id, status, content) VALUES ($1, 'ready', '{}'::jsonb)", request_id
    )
    assert await apply_after_sync(pool, settings) == 2
    assert (tmp_path / "state/archive/truck-1/requests/order.json").exists()
    assert (tmp_path / "state/archive/truck-1/requests/order-photo.jpg").exists()


async def test_archive_never_overwrites_an_archived_file(pool: asyncpg.Pool, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "archive")
    earlier = tmp_path / "state/archive/truck-1/responses/r.json"
    earlier.parent.mkdir(parents=True)
    earlier.write_bytes(b"archived before")
    await drop(pool, settings, "truck-1/responses/r.json", b"newer", ["one", "two"])
    await pool.execute("UPDATE cloud_file_refs SET processed_at = now()")
    await sync(pool, "one")
    await sync(pool, "two")
    assert await apply_after_sync(pool, settings) == 1
    assert earlier.read_bytes() == b"archived before"
    second = tmp_path / "state/archive/truck-1/responses/r (2).json"
    assert second.read_bytes() == b"newer"
    assert await states(pool, "truck-1/responses/r.json") == {("archived", str(second))}


async def test_a_file_changed_on_disk_since_it_was_synced_is_left_alone(pool: asyncpg.Pool, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "delete")
    source = await drop(pool, settings, "truck-1/requests/a.bin", b"aaaa", ["one", "two"])
    await sync(pool, "one")
    await sync(pool, "two")
    stamp = source.stat().st_mtime_ns
    source.write_bytes(b"bbbb")  # same size, new content: not yet recorded
    os.utime(source, ns=(stamp, stamp))  # even with the old mtime, the hash tells
    assert await apply_after_sync(pool, settings) == 0
    assert source.read_bytes() == b"bbbb"
    assert await states(pool, "truck-1/requests/a.bin") == {("present", None)}


async def test_keep_touches_nothing(pool: asyncpg.Pool, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "keep")
    source = await drop(pool, settings, "truck-1/requests/a.bin", b"a", ["one", "two"])
    await sync(pool, "one")
    await sync(pool, "two")
    assert await apply_after_sync(pool, settings) == 0
    assert source.exists()


@pytest.mark.slow
async def test_the_daemon_archives_synced_files_and_keeps_unanswered_requests(
    daemon: Callable[..., DaemonProcess],
) -> None:
    d = daemon(after_sync="archive", after_sync_min_age_seconds=0, scan_interval_seconds=1)
    d.command("load", str(CATALOG))
    d.start()
    d.drop("truck-1/requests/photos/a.jpg", b"photo")
    # An unknown type from a known user waits for an external processor: pending, unanswered.
    question = {"type": "custom_question", "user": "rita.kowalski@northwind-fleet.example", "payload": {}}
    d.drop("truck-1/requests/ask.json", json.dumps(question).encode())
    archived = d.state_dir / "archive/truck-1/requests/photos/a.jpg"
    for _ in range(300):
        if archived.exists():
            break
        await asyncio.sleep(0.1)
    assert archived.read_bytes() == b"photo"
    assert not (d.watch_root / "truck-1/requests/photos/a.jpg").exists()
    assert (d.mirror / "truck-1/requests/photos/a.jpg").read_bytes() == b"photo"
    rows = await d.query("SELECT local_state, archived_path FROM cloud_file_refs WHERE local_path LIKE '%a.jpg'")
    assert [(r["local_state"], r["archived_path"]) for r in rows] == [("archived", str(archived))]
    await asyncio.sleep(2.0)  # the unanswered request stays where the device put it
    assert (d.watch_root / "truck-1/requests/ask.json").exists()
    assert [r["status"] for r in await d.query("SELECT status FROM requests")] == ["pending"]
    assert d.stop() == 0


@pytest.mark.slow
@pytest.mark.parametrize("same_mtime", [False, True], ids=["new-mtime", "same-mtime"])
async def test_a_file_dropped_again_with_identical_content_after_a_delete_is_deleted_again(
    daemon: Callable[..., DaemonProcess], same_mtime: bool
) -> None:
    d = daemon(after_sync="delete", after_sync_min_age_seconds=0, scan_interval_seconds=1)
    d.start()
    await d.wait_started()
    path = d.drop("truck-1/requests/photos/a.jpg", b"photo")
    first_mtime = path.stat().st_mtime_ns

    async def deleted() -> bool:
        rows = await d.query("SELECT local_state FROM cloud_file_refs WHERE local_path LIKE '%a.jpg'")
        return not path.exists() and [r["local_state"] for r in rows] == ["deleted"]

    await d.wait_for(deleted, 60, "the first drop deleted")
    path = d.drop("truck-1/requests/photos/a.jpg", b"photo")
    if same_mtime:  # restored from a backup with its timestamps: the very version the ledger holds
        os.utime(path, ns=(first_mtime, first_mtime))
    await d.wait_for(deleted, 60, "the second drop deleted as well")
    rows = await d.query("SELECT sync_status FROM cloud_file_refs WHERE local_path LIKE '%a.jpg'")
    assert [r["sync_status"] for r in rows] == ["synced"]  # one row: the same version, not a duplicate
    assert d.stop() == 0


@pytest.mark.parametrize("policy", ["delete", "archive"])
async def test_a_folder_swapped_for_a_link_after_sync_never_removes_what_the_link_points_at(
    pool: asyncpg.Pool, tmp_path: Path, policy: str
) -> None:
    settings = settings_for(tmp_path, policy)
    source = await drop(pool, settings, "truck-1/requests/x/a.bin", b"aaaa", ["one", "two"])
    await sync(pool, "one")
    await sync(pool, "two")
    # The same name, bytes and mtime outside the watch root; then x becomes a link to it.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "a.bin").write_bytes(b"aaaa")
    stamp = source.stat().st_mtime_ns
    os.utime(outside / "a.bin", ns=(stamp, stamp))
    source.parent.rename(source.parent.with_name("x.old"))
    source.parent.symlink_to(outside)
    assert await apply_after_sync(pool, settings) == 0
    assert (outside / "a.bin").read_bytes() == b"aaaa"
    assert (source.parent.with_name("x.old") / "a.bin").read_bytes() == b"aaaa"
    assert await states(pool, "truck-1/requests/x/a.bin") == {("present", None)}
