"""Rows born claimed: the recording transaction hands fresh rows straight to a caught-up uploader
(one ledger write per row fewer than recording them pending and claiming them a moment later),
and leaves them pending whenever the uploader should not jump the queue."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from cloudwatcher.daemon.ledger import FileVersion
from tests.daemon.test_uploader_batches import Harness, drop


@pytest.fixture
def harness(pool: asyncpg.Pool, tmp_path: Path) -> Harness:
    return Harness(pool, tmp_path)


async def _until(condition: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def _files(harness: Harness, count: int, folder: str = "dev/requests") -> list[FileVersion]:
    return [drop(harness.watch_root, f"{folder}/f{i}.dat", os.urandom(200 + i)) for i in range(count)]


async def test_a_caught_up_uploader_gets_fresh_rows_claimed_by_the_recording_itself(
    harness: Harness, pool: asyncpg.Pool
) -> None:
    assert harness.uploader.handoff_room() == 0  # not running: nothing is handed to it
    stopping = asyncio.Event()
    task = asyncio.create_task(harness.uploader.run(stopping))
    try:
        await _until(lambda: harness.uploader.handoff_room() > 0, "the first claim to find nothing pending")
        versions = _files(harness, 40)
        recorded = await harness.ledger.record_and_claim(
            [("mirror", "local", version) for version in versions], {"mirror": harness.uploader.handoff_room()}
        )
        assert recorded.new_rows == 40
        assert not recorded.left_pending
        claimed = recorded.claimed["mirror"]
        assert sorted(row.local_path for row in claimed) == sorted(version.local_path for version in versions)
        born = await pool.fetch("SELECT sync_status, lease_expires_at > now() AS leased FROM cloud_file_refs")
        assert {(row["sync_status"], row["leased"]) for row in born} == {("uploading", True)}

        harness.uploader.accept(claimed)

        async def synced() -> int:
            return await pool.fetchval("SELECT count(*) FROM cloud_file_refs WHERE sync_status = 'synced'")

        deadline = time.monotonic() + 30
        while await synced() < 40:
            assert time.monotonic() < deadline, "the handed-off rows were not synced"
            await asyncio.sleep(0.05)
    finally:
        stopping.set()
        await task
    for version in versions:
        mirrored = harness.mirror / version.local_path
        assert mirrored.read_bytes() == (harness.watch_root / version.local_path).read_bytes()


async def test_rows_beyond_the_room_and_on_a_parked_target_are_recorded_pending(
    harness: Harness, pool: asyncpg.Pool
) -> None:
    versions = _files(harness, 30)
    recorded = await harness.ledger.record_and_claim([("mirror", "local", v) for v in versions[:20]], {"mirror": 5})
    assert len(recorded.claimed["mirror"]) == 5
    assert recorded.left_pending == {"mirror"}  # the uploader is told to claim the rest
    rows = await pool.fetch("SELECT sync_status, count(*) AS n FROM cloud_file_refs GROUP BY sync_status")
    counts = {row["sync_status"]: row["n"] for row in rows}
    assert counts == {"uploading": 5, "pending": 15}

    await pool.execute(
        "INSERT INTO target_states (target, state, reason, until)"
        " VALUES ('mirror', 'parked', 'cap', now() + interval '1 hour')"
    )
    parked = await harness.ledger.record_and_claim([("mirror", "local", v) for v in versions[20:]], {"mirror": 100})
    assert parked.new_rows == 10
    assert not parked.claimed  # a parked target takes nothing, as with a claim
    assert parked.left_pending == {"mirror"}


async def test_a_failed_row_seen_again_is_revived_pending_not_claimed(harness: Harness, pool: asyncpg.Pool) -> None:
    (version,) = _files(harness, 1)
    await harness.ledger.record([("mirror", "local", version)])
    await pool.execute("UPDATE cloud_file_refs SET sync_status = 'failed', last_error = 'x', attempts = 1")
    touched = FileVersion(
        version.local_path, version.device_id, version.kind, version.sha256, version.size, version.mtime_ns + 1
    )
    recorded = await harness.ledger.record_and_claim([("mirror", "local", touched)], {"mirror": 10})
    assert recorded.new_rows == 0
    assert not recorded.claimed  # only a new row can be born claimed
    assert recorded.left_pending == {"mirror"}
    assert await pool.fetchval("SELECT sync_status FROM cloud_file_refs") == "pending"


async def test_an_uploader_that_is_behind_or_told_of_pending_rows_takes_none(harness: Harness) -> None:
    stopping = asyncio.Event()
    task = asyncio.create_task(harness.uploader.run(stopping))
    try:
        await _until(lambda: harness.uploader.handoff_room() > 0, "the first claim to find nothing pending")
        harness.uploader.notify_pending()  # e.g. the retry job re-queued rows: those go first
        assert harness.uploader.handoff_room() == 0
        await _until(lambda: harness.uploader.handoff_room() > 0, "a claim to catch up again")
        stopping.set()
        await task
        assert harness.uploader.handoff_room() == 0  # stopped: fresh rows stay pending
    finally:
        stopping.set()
        await task
