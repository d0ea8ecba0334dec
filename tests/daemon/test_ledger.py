"""Ledger statements against a real PostgreSQL: batch record, claims, leases, retries."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from cloudwatcher.daemon.ledger import FailedRow, FileVersion, Ledger, SyncedRow, retry_failed


@pytest.fixture
async def ledger(pool: asyncpg.Pool) -> Ledger:
    return Ledger(pool)


def version(name: str, content: bytes = b"x") -> FileVersion:
    return FileVersion(
        f"dev/requests/{name}", "dev", "attachment", hashlib.sha256(content).hexdigest(), len(content), 1
    )


async def test_recording_thousands_of_files_is_one_batch_and_idempotent(ledger: Ledger) -> None:
    files = [version(f"f{i}", str(i).encode()) for i in range(5000)]
    rows = [(target, "local", f) for f in files for target in ("a", "b")]
    assert await ledger.record(rows) == 10000
    assert await ledger.record(rows) == 0
    assert await ledger.pool.fetchval("SELECT count(*) FROM cloud_file_refs") == 10000
    known = await ledger.known_versions(["dev/requests/f7"])
    assert known["dev/requests/f7"][0].targets == {"a", "b"}


async def test_two_workers_never_claim_the_same_row(ledger: Ledger) -> None:
    await ledger.record([("a", "local", version(f"f{i}", str(i).encode())) for i in range(300)])
    claims = await asyncio.gather(*(ledger.claim("a", 50, 30, None) for _ in range(8)))
    ids = [row.id for claim in claims for row in claim]
    assert len(ids) == len(set(ids)) == 300


async def test_expired_leases_return_to_pending(ledger: Ledger) -> None:
    await ledger.record([("a", "local", version("f"))])
    (row,) = await ledger.claim("a", 10, 0.01, None)
    await asyncio.sleep(0.05)
    assert await ledger.reap_expired_leases() == {"a"}
    assert [r.id for r in await ledger.claim("a", 10, 30, None)] == [row.id]


async def test_failures_are_requeued_when_due_and_gave_up_rows_only_by_retry(ledger: Ledger) -> None:
    await ledger.record([("a", "local", version("due")), ("a", "local", version("gave-up", b"y"))])
    due, gave_up = sorted(await ledger.claim("a", 10, 30, None), key=lambda r: r.local_path)
    past = datetime.now(UTC) - timedelta(seconds=1)
    await ledger.mark_failed(
        [
            FailedRow(due.id, due.claim_token, "503 busy", past),
            FailedRow(gave_up.id, gave_up.claim_token, "403 forbidden", None),
        ],
        None,
    )
    assert await ledger.requeue_due() == {"a"}
    assert [r.id for r in await ledger.claim("a", 10, 30, None)] == [due.id]
    assert await retry_failed(ledger.pool, None) == 1
    row = await ledger.pool.fetchrow(
        "SELECT sync_status, attempts, last_error FROM cloud_file_refs WHERE id = $1", gave_up.id
    )
    assert (row["sync_status"], row["attempts"]) == ("pending", 0)


async def test_synced_rows_keep_what_the_provider_reported(ledger: Ledger) -> None:
    await ledger.record([("a", "local", version("f"))])
    (row,) = await ledger.claim("a", 10, 30, None)
    synced = SyncedRow(row.id, row.claim_token, "/m/dev/requests/f", "id-1", 1, "sha256:ab", "hash")
    assert await ledger.mark_synced([synced], None) == 0
    stored = await ledger.pool.fetchrow("SELECT * FROM cloud_file_refs WHERE id = $1", row.id)
    assert stored["sync_status"] == "synced" and stored["uploaded_at"] is not None
    assert (stored["remote_id"], stored["remote_size"], stored["remote_hash"]) == ("id-1", 1, "sha256:ab")
    assert stored["attempts"] == 1 and stored["lease_expires_at"] is None


@pytest.mark.parametrize("split", [True, False], ids=["two-statements", "one-statement"])
async def test_a_big_batch_of_results_is_written_in_full(ledger: Ledger, split: bool) -> None:
    # More rows than one mark statement takes when split (they go as two at once, the way the
    # uploader marks them once nothing else is uploading), or all in one: every one is written.
    await ledger.record([("a", "local", version(f"f{i}", str(i).encode())) for i in range(2501)])
    claimed = await ledger.claim("a", 5000, 30, None)
    results = [
        SyncedRow(row.id, row.claim_token, f"/m/{row.local_path}", None, row.size, f"sha256:{row.sha256}", "hash")
        for row in claimed
    ]
    assert await ledger.mark_synced(results, None, split=split) == 0
    rows = await ledger.pool.fetch("SELECT sync_status, cloud_path, local_path FROM cloud_file_refs")
    assert len(rows) == 2501
    assert all(row["sync_status"] == "synced" and row["cloud_path"] == f"/m/{row['local_path']}" for row in rows)
