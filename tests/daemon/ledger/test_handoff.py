"""Rows born claimed: the recording transaction hands fresh rows straight to a caught-up uploader
(one ledger write per row fewer than recording them pending and claiming them a moment later),
and leaves them pending whenever the uploader should not jump the queue."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from uuid import UUID

import asyncpg
import pytest

from cloudwatcher.daemon.ledger import recorder
from cloudwatcher.daemon.ledger.store import FileVersion, Recorded, SyncedRow
from cloudwatcher.daemon.ops import metrics
from cloudwatcher.daemon.watch.scanner import Candidate
from tests.support.uploader_harness import Harness, drop


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


async def _upload_born_claimed(
    harness: Harness,
    versions: list[FileVersion],
    before_upload: Callable[[Recorded], Awaitable[None]] | None = None,
) -> dict[str, asyncpg.Record]:
    """Record ``versions`` claimed for a running uploader (``before_upload`` looks at what the
    recording did before the uploader gets them), let it upload them; the rows by path."""
    stopping = asyncio.Event()
    task = asyncio.create_task(harness.uploader.run(stopping))
    pool = harness.ledger.pool
    try:
        await _until(lambda: harness.uploader.handoff_room() > 0, "the first claim to find nothing pending")
        recorded = await harness.ledger.record_and_claim(
            [("mirror", "local", v) for v in versions], {"mirror": harness.uploader.handoff_room()}
        )
        assert len(recorded.claimed["mirror"]) == len(versions)
        if before_upload is not None:
            await before_upload(recorded)
        harness.uploader.accept(recorded.claimed["mirror"])
        deadline = time.monotonic() + 30
        query = "SELECT count(*) FROM cloud_file_refs WHERE sync_status IN ('synced', 'failed')"
        while await pool.fetchval(query) < len(versions):
            assert time.monotonic() < deadline, "the handed-off rows did not settle"
            await asyncio.sleep(0.05)
    finally:
        stopping.set()
        await task
    return {row["local_path"]: row for row in await pool.fetch("SELECT * FROM cloud_file_refs")}


async def test_a_caught_up_uploader_gets_fresh_rows_claimed_by_the_recording_itself(
    harness: Harness, pool: asyncpg.Pool
) -> None:
    assert harness.uploader.handoff_room() == 0  # not running: nothing is handed to it
    versions = _files(harness, 40)

    async def born_claimed(recorded: Recorded) -> None:
        assert recorded.new_rows == 40
        assert not recorded.left_pending
        claimed = recorded.claimed["mirror"]
        assert sorted(row.local_path for row in claimed) == sorted(version.local_path for version in versions)
        born = await pool.fetch("SELECT sync_status, lease_expires_at > now() AS leased FROM cloud_file_refs")
        assert {(row["sync_status"], row["leased"]) for row in born} == {("uploading", True)}

    rows = await _upload_born_claimed(harness, versions, born_claimed)

    assert {row["sync_status"] for row in rows.values()} == {"synced"}
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


def _with_content(harness: Harness, local_path: str, content: bytes) -> FileVersion:
    """A file described as the recorder describes a small one: with the bytes it hashed."""
    version = drop(harness.watch_root, local_path, content)
    return dataclasses.replace(version, content=content)


async def test_recorded_bytes_are_what_lands_and_the_file_is_checked_after(harness: Harness) -> None:
    same = _with_content(harness, "dev/requests/same.dat", b"recorded bytes")
    # Rewritten in place after recording, same size, mtime put back: only the bytes differ.
    # What lands must be what was recorded (and hashed), not what the file holds now.
    rewritten = _with_content(harness, "dev/requests/rewritten.dat", b"AAAA")
    path = harness.watch_root / rewritten.local_path
    path.write_bytes(b"BBBB")
    os.utime(path, ns=(rewritten.mtime_ns, rewritten.mtime_ns))
    grown = _with_content(harness, "dev/requests/grown.dat", b"short")
    (harness.watch_root / grown.local_path).write_bytes(b"grown after it was recorded")
    gone = _with_content(harness, "dev/requests/gone.dat", b"soon gone")
    (harness.watch_root / gone.local_path).unlink()

    rows = await _upload_born_claimed(harness, [same, rewritten, grown, gone])

    assert rows[same.local_path]["sync_status"] == "synced"
    assert (harness.mirror / same.local_path).read_bytes() == b"recorded bytes"
    assert rows[rewritten.local_path]["sync_status"] == "synced"
    assert (harness.mirror / rewritten.local_path).read_bytes() == b"AAAA"
    assert rows[grown.local_path]["sync_status"] == "failed"
    assert "changed since it was recorded" in rows[grown.local_path]["last_error"]
    assert rows[grown.local_path]["next_attempt_at"] is None  # its new content gets its own row
    assert harness.changed == [grown.local_path]  # the watcher is asked to look again
    assert rows[gone.local_path]["sync_status"] == "failed"
    assert "no longer exists" in rows[gone.local_path]["last_error"]


def test_the_recorder_keeps_the_bytes_of_small_files_within_a_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def candidate(name: str, content: bytes) -> Candidate:
        path = tmp_path / name
        path.write_bytes(content)
        info = path.stat()
        return Candidate(name, str(path), info.st_size, info.st_mtime_ns)

    small = candidate("small", b"x" * 100)
    big = candidate("big", b"y" * (recorder.KEEP_CONTENT_LIMIT + 1))
    monkeypatch.setattr(recorder, "KEEP_CONTENT_BUDGET", 150)
    first, second, third = recorder._hash_many([small, big, small])
    assert first == (hashlib.sha256(b"x" * 100).hexdigest(), b"x" * 100)
    assert second is not None and second[1] is None  # over the size limit: hashed, not kept
    assert third is not None and third[1] is None  # the budget is spent: hashed, not kept


# ---------------------------------------------------------------- claims born here, lost to another instance


def _claims_lost() -> float:
    return metrics.REGISTRY.get_sample_value("cloudwatcher_claims_lost_total", {"target": "mirror"}) or 0.0


async def _taken_over_and_synced(pool: asyncpg.Pool, harness: Harness) -> UUID:
    """Another instance takes every row after its lease ran out, and syncs it: its result must stand."""
    other: UUID = await pool.fetchval(
        "INSERT INTO instances (host, pid, version, watch_root) VALUES ('other', 1, 'test', '/inbox') RETURNING id"
    )
    await pool.execute("UPDATE cloud_file_refs SET lease_expires_at = now() - interval '1 second'")
    await harness.ledger.reap_expired_leases()
    taken = await harness.ledger.claim("mirror", 1000, 30, other)
    results = [
        SyncedRow(r.id, r.claim_token, f"/other/{r.local_path}", None, r.size, "sha256:x", "hash") for r in taken
    ]
    assert await harness.ledger.mark_synced(results, other) == 0
    return other


async def test_born_claimed_rows_whose_lease_ran_out_before_their_upload_are_not_uploaded_by_the_stalled_instance(
    harness: Harness, pool: asyncpg.Pool
) -> None:
    versions = _files(harness, 12)
    lost_before = _claims_lost()
    other: UUID | None = None

    async def stalled_past_the_lease(recorded: Recorded) -> None:
        nonlocal other
        for row in recorded.claimed["mirror"]:
            row.lease_until = time.monotonic() - 1  # as after a stall longer than the lease
        other = await _taken_over_and_synced(pool, harness)

    rows = await _upload_born_claimed(harness, versions, stalled_past_the_lease)

    assert {(row["sync_status"], row["uploaded_by"]) for row in rows.values()} == {("synced", other)}
    assert all(row["cloud_path"] == f"/other/{path}" for path, row in rows.items())
    assert all(row["attempts"] == 1 for row in rows.values())  # the other instance's one attempt
    assert not harness.mirror.exists() or not any(p.is_file() for p in harness.mirror.rglob("*")), "nothing uploaded"
    assert _claims_lost() - lost_before == 12


async def test_born_claimed_rows_whose_lease_may_have_run_out_but_is_still_held_are_claimed_again_and_uploaded(
    harness: Harness, pool: asyncpg.Pool
) -> None:
    versions = _files(harness, 12)
    lost_before = _claims_lost()

    async def stalled_but_not_taken(recorded: Recorded) -> None:
        for row in recorded.claimed["mirror"]:
            row.lease_until = time.monotonic() - 1

    rows = await _upload_born_claimed(harness, versions, stalled_but_not_taken)

    assert {row["sync_status"] for row in rows.values()} == {"synced"}
    for version in versions:
        assert (harness.mirror / version.local_path).read_bytes() == (
            harness.watch_root / version.local_path
        ).read_bytes()
    assert _claims_lost() == lost_before


async def test_results_of_claims_taken_over_during_the_upload_are_not_written_back(
    harness: Harness, pool: asyncpg.Pool
) -> None:
    # The lease still looked held to the uploader when it began (its own clock had not run past
    # it), yet another instance took the rows meanwhile: the write-back is fenced and counted.
    versions = _files(harness, 12)
    lost_before = _claims_lost()
    other: UUID | None = None

    async def taken_while_uploading(recorded: Recorded) -> None:
        nonlocal other
        other = await _taken_over_and_synced(pool, harness)

    rows = await _upload_born_claimed(harness, versions, taken_while_uploading)  # run, stopped, flushed

    assert {(row["sync_status"], row["uploaded_by"]) for row in rows.values()} == {("synced", other)}
    assert all(row["cloud_path"] == f"/other/{path}" and row["attempts"] == 1 for path, row in rows.items())
    assert _claims_lost() - lost_before == 12
