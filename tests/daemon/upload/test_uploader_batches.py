"""The uploader against a real PostgreSQL and a real mirror folder: small files go through the
local provider in batches (one thread hand-off per batch), big ones one task each; both paths
must keep the same promises (verified bytes, per-file failures with reasons, versions in order).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from pathlib import Path
from uuid import UUID

import asyncpg
import pytest

from cloudwatcher.config import LocalTarget
from cloudwatcher.daemon.ledger.store import SyncedRow
from cloudwatcher.daemon.upload.batches import BATCH_FILE_LIMIT
from cloudwatcher.providers import BlockingUploads
from cloudwatcher.providers.local.provider import LocalProvider
from tests.support.uploader_harness import Harness, drop


@pytest.fixture
def harness(pool: asyncpg.Pool, tmp_path: Path) -> Harness:
    return Harness(pool, tmp_path)


def test_the_local_provider_offers_blocking_uploads_and_cloud_providers_do_not() -> None:
    local = LocalProvider(LocalTarget(name="m", provider="local", root=Path("/nonexistent")))
    assert isinstance(local, BlockingUploads)
    from cloudwatcher.providers.google_drive.provider import GoogleDriveProvider
    from cloudwatcher.providers.s3.provider import S3Provider
    from cloudwatcher.providers.sharepoint.provider import SharePointProvider

    for cloud in (S3Provider, GoogleDriveProvider, SharePointProvider):
        assert not hasattr(cloud, "upload_blocking"), cloud


async def test_small_and_big_files_in_one_claim_all_land_verified(harness: Harness) -> None:
    small = [drop(harness.watch_root, f"dev-{i % 7}/requests/batch/f{i}.dat", os.urandom(100 + i)) for i in range(300)]
    big = drop(harness.watch_root, "dev-0/requests/big.bin", os.urandom(BATCH_FILE_LIMIT + 1))
    empty = drop(harness.watch_root, "dev-1/requests/empty.dat", b"")
    versions = [*small, big, empty]
    await harness.record(versions)

    rows = await harness.run_until_settled(len(versions))

    for version in versions:
        (row,) = rows[version.local_path]
        assert row["sync_status"] == "synced", row["last_error"]
        assert row["remote_hash"] == f"sha256:{version.sha256}"
        assert row["verification"] == "hash"
        assert row["cloud_path"] == str(harness.mirror / version.local_path)
        mirrored = (harness.mirror / version.local_path).read_bytes()
        assert mirrored == (harness.watch_root / version.local_path).read_bytes()
    assert sorted(harness.results) == sorted((version.local_path, True) for version in versions)
    leftovers = [path.name for path in harness.mirror.rglob("*") if path.name.endswith(".tmp")]
    assert leftovers == []


async def test_a_failure_in_a_batch_fails_only_its_own_row_with_the_reason(harness: Harness) -> None:
    versions = [drop(harness.watch_root, f"dev/requests/f{i}.dat", f"content {i}".encode()) for i in range(40)]
    await harness.record(versions)
    (harness.watch_root / "dev/requests/f3.dat").unlink()  # vanished after it was recorded
    changed = harness.watch_root / "dev/requests/f7.dat"
    changed.write_bytes(b"rewritten after it was recorded")

    rows = await harness.run_until_settled(len(versions))

    (vanished,) = rows["dev/requests/f3.dat"]
    assert vanished["sync_status"] == "failed"
    assert "no longer exists" in vanished["last_error"]
    assert vanished["next_attempt_at"] is None  # it cannot come back: gave up
    (rewritten,) = rows["dev/requests/f7.dat"]
    assert rewritten["sync_status"] == "failed"
    assert "changed" in rewritten["last_error"]
    assert harness.changed == ["dev/requests/f7.dat"]  # the watcher is asked to look again
    synced = [path for path, (row,) in rows.items() if row["sync_status"] == "synced"]
    assert len(synced) == len(versions) - 2
    assert not (harness.mirror / "dev/requests/f3.dat").exists()
    assert not (harness.mirror / "dev/requests/f7.dat").exists()


async def test_a_read_only_mirror_fails_the_batch_rows_for_a_retry_and_they_sync_after(harness: Harness) -> None:
    if os.geteuid() == 0:
        blocker = harness.mirror  # root ignores permissions: a file where the folder belongs
        blocker.parent.mkdir(parents=True, exist_ok=True)
        blocker.write_bytes(b"not a folder")
    else:
        blocker = harness.mirror
        blocker.mkdir(parents=True)
        blocker.chmod(0o555)
    versions = [drop(harness.watch_root, f"dev/requests/f{i}.dat", f"c{i}".encode()) for i in range(10)]
    await harness.record(versions)

    rows = await harness.run_until_settled(len(versions))
    for version in versions:
        (row,) = rows[version.local_path]
        assert row["sync_status"] == "failed"
        assert row["next_attempt_at"] is not None  # transient: the schedule retries it
        assert row["last_error"]

    if blocker.is_file():
        blocker.unlink()
    else:
        blocker.chmod(0o755)
    await harness.ledger.pool.execute("UPDATE cloud_file_refs SET next_attempt_at = now() - interval '1 second'")
    assert await harness.ledger.requeue_due() == {"mirror"}  # what the scheduled retry job runs
    rows = await harness.run_until_settled(len(versions))
    for version in versions:
        (row,) = rows[version.local_path]
        assert row["sync_status"] == "synced", row["last_error"]
        assert (harness.mirror / version.local_path).read_bytes() == (
            harness.watch_root / version.local_path
        ).read_bytes()


async def test_two_versions_of_one_file_claimed_together_go_up_in_order(harness: Harness) -> None:
    first = drop(harness.watch_root, "dev/requests/report.dat", b"first version")
    await harness.record([first])
    second = drop(harness.watch_root, "dev/requests/report.dat", b"the second, final version")
    assert second.mtime_ns != first.mtime_ns or second.size != first.size
    await harness.record([second])

    rows = await harness.run_until_settled(2)

    older, newer = rows["dev/requests/report.dat"]
    assert older["content_sha256"] == first.sha256
    assert older["sync_status"] == "failed"  # its bytes are gone from the inbox: superseded
    assert "changed" in older["last_error"]
    assert newer["sync_status"] == "synced"
    assert (harness.mirror / "dev/requests/report.dat").read_bytes() == b"the second, final version"


async def test_rows_that_finish_during_a_slow_write_back_are_written_back_without_waiting_for_it(
    harness: Harness,
) -> None:
    # At the end of a burst, the last rows used to queue behind the write-back in progress.
    await harness.record([drop(harness.watch_root, "dev/requests/a.dat", b"a")])
    write_back = harness.ledger.mark_synced
    first_started, release = asyncio.Event(), asyncio.Event()
    calls: list[int] = []

    async def slow_first(rows: Sequence[SyncedRow], instance_id: UUID | None, split: bool = True) -> int:
        calls.append(len(rows))
        if len(calls) == 1:
            first_started.set()
            await release.wait()
        return await write_back(rows, instance_id, split)

    harness.ledger.mark_synced = slow_first  # type: ignore[method-assign]
    stopping = asyncio.Event()
    running = asyncio.create_task(harness.uploader.run(stopping))
    try:
        await asyncio.wait_for(first_started.wait(), 30)
        await harness.record([drop(harness.watch_root, "dev/requests/b.dat", b"b")])
        harness.uploader.notify_pending()
        deadline = time.monotonic() + 30
        while (
            await harness.ledger.pool.fetchval("SELECT count(*) FROM cloud_file_refs WHERE sync_status = 'synced'") < 1
        ):
            assert time.monotonic() < deadline, "b was not written back while a's write-back was stuck"
            await asyncio.sleep(0.05)
        synced = await harness.ledger.pool.fetchval(
            "SELECT local_path FROM cloud_file_refs WHERE sync_status = 'synced'"
        )
        assert synced == "dev/requests/b.dat" and calls == [1, 1]
    finally:
        release.set()
        stopping.set()
        await running
    assert await harness.ledger.pool.fetchval("SELECT count(*) FROM cloud_file_refs WHERE sync_status = 'synced'") == 2


async def test_a_deadlock_while_writing_results_back_is_retried(harness: Harness) -> None:
    """PostgreSQL aborts one side of a deadlock (another writer of the same rows) and asks for a
    retry: the results stay in memory and are written by the next round."""
    versions = [drop(harness.watch_root, f"dev/requests/f{i}.dat", f"c{i}".encode()) for i in range(10)]
    await harness.record(versions)
    write_back = harness.ledger.mark_synced
    calls: list[int] = []

    async def deadlocked_once(rows: Sequence[SyncedRow], instance_id: UUID | None, split: bool = True) -> int:
        calls.append(len(rows))
        if len(calls) == 1:
            raise asyncpg.DeadlockDetectedError("deadlock detected")
        return await write_back(rows, instance_id, split)

    harness.ledger.mark_synced = deadlocked_once  # type: ignore[method-assign]
    rows = await harness.run_until_settled(len(versions))

    assert len(calls) >= 2
    assert all(row["sync_status"] == "synced" for (row,) in rows.values())


async def test_an_unexpected_failure_writing_results_back_stops_the_uploader(harness: Harness) -> None:
    """A flush loop that died silently would leave rows 'uploading' with leases renewed forever."""
    await harness.record([drop(harness.watch_root, "dev/requests/a.dat", b"a")])

    async def broken(rows: Sequence[SyncedRow], instance_id: UUID | None, split: bool = True) -> int:
        raise RuntimeError("a bug in writing results back")

    harness.ledger.mark_synced = broken  # type: ignore[method-assign]
    running = asyncio.create_task(harness.uploader.run(asyncio.Event()))  # never asked to stop
    done, _ = await asyncio.wait({running}, timeout=30)
    if not done:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert done, "the uploader went on without writing its results back"
    with pytest.raises(RuntimeError, match="a bug"):
        running.result()
