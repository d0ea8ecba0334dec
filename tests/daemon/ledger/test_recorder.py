"""The recorder against a real PostgreSQL: a burst is recorded once, in growing batches, while the
next batch is hashed as the previous one is written."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg

from cloudwatcher.daemon.health import DatabaseHealth
from cloudwatcher.daemon.ledger.recorder import Recorder, TargetSpec, sha256_of_path
from cloudwatcher.daemon.ledger.store import FileVersion, Ledger
from cloudwatcher.daemon.watch.scanner import Candidate


def candidate(root: Path, local_path: str, content: bytes) -> Candidate:
    path = root / local_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    info = path.stat()
    return Candidate(local_path, str(path), info.st_size, info.st_mtime_ns)


async def record_all(recorder: Recorder) -> None:
    """Run the recorder until everything offered is recorded."""
    task = asyncio.create_task(recorder.run())
    try:
        await asyncio.sleep(0)  # let it take the first batch
        await asyncio.wait_for(recorder.idle.wait(), timeout=60)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_burst_is_recorded_once_in_batches_that_grow(pool: asyncpg.Pool, tmp_path: Path) -> None:
    batches: list[list[FileVersion]] = []
    recorder = Recorder(
        Ledger(pool),
        [TargetSpec("mirror", "local", (), ()), TargetSpec("offsite", "s3", ("**/*.json",), ())],
        DatabaseHealth(),
        on_recorded=batches.append,
        batch_size=1000,
    )
    offered = [candidate(tmp_path, f"dev-{i % 10}/requests/f{i}.json", os.urandom(64)) for i in range(3000)]
    for found in offered:
        recorder.offer(found)

    await record_all(recorder)

    assert [len(batch) for batch in batches] == [250, 500, 1000, 1000, 250]  # then batch_size, then the rest
    recorded = {version.local_path: version for batch in batches for version in batch}
    assert len(recorded) == 3000
    for found in offered:
        assert recorded[found.local_path].sha256 == sha256_of_path(Path(found.absolute_path))
    assert await pool.fetchval("SELECT count(*) FROM cloud_file_refs") == 6000  # a row per target
    assert await pool.fetchval("SELECT count(DISTINCT target) FROM cloud_file_refs") == 2

    # Offered again unchanged (a reconcile scan): nothing new to hash or record.
    batches.clear()
    for found in offered:
        recorder.offer(found)
    await record_all(recorder)
    assert batches == []  # nothing handed to the uploaders
    assert await pool.fetchval("SELECT count(*) FROM cloud_file_refs") == 6000


async def test_a_file_rewritten_during_a_burst_gets_a_row_per_version(pool: asyncpg.Pool, tmp_path: Path) -> None:
    recorder = Recorder(Ledger(pool), [TargetSpec("mirror", "local", (), ())], DatabaseHealth(), lambda _: None)
    for i in range(600):
        recorder.offer(candidate(tmp_path, f"dev/requests/f{i}.dat", os.urandom(32)))
    task = asyncio.create_task(recorder.run())
    try:
        await asyncio.sleep(0)
        rewritten = candidate(tmp_path, "dev/requests/f1.dat", b"new content, longer than before" * 4)
        recorder.offer(rewritten)
        await asyncio.wait_for(recorder.idle.wait(), timeout=60)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    rows = await pool.fetch("SELECT content_sha256 FROM cloud_file_refs WHERE local_path = 'dev/requests/f1.dat'")
    assert sha256_of_path(Path(rewritten.absolute_path)) in {row[0] for row in rows}
    assert await pool.fetchval("SELECT count(DISTINCT local_path) FROM cloud_file_refs") == 600


async def test_a_candidate_whose_name_is_not_utf8_never_reaches_the_ledger(pool: asyncpg.Pool, tmp_path: Path) -> None:
    root = tmp_path / "inbox"
    (root / "dev1/requests").mkdir(parents=True)
    with open(os.path.join(os.fsencode(root), b"dev1/requests/bad-\xff.txt"), "wb") as handle:
        handle.write(b"bad")
    (root / "dev1/requests/good.txt").write_bytes(b"good")
    recorded: list[FileVersion] = []
    recorder = Recorder(Ledger(pool), [TargetSpec("t", "local", (), ())], DatabaseHealth(), recorded.extend)
    for name in ("bad-\udcff.txt", "good.txt"):  # the bad one as os.fsdecode gives it
        path = os.path.join(root, "dev1/requests", name)
        info = os.lstat(path)
        recorder.offer(Candidate(f"dev1/requests/{name}", path, info.st_size, info.st_mtime_ns))
    await record_all(recorder)
    assert [version.local_path for version in recorded] == ["dev1/requests/good.txt"]
    rows = await pool.fetch("SELECT local_path FROM cloud_file_refs")
    assert [row["local_path"] for row in rows] == ["dev1/requests/good.txt"]
