"""Ledger statements against a real PostgreSQL: batch record, claims, leases, retries, and the
fencing of every write-back by its claim (instance id and claim token)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import pytest

from cloudwatcher.daemon.jobs.cluster import release_claims_of_dead_instances
from cloudwatcher.daemon.ledger.store import (
    LEASE_SECONDS,
    ClaimedRow,
    FailedRow,
    FileVersion,
    Ledger,
    SyncedRow,
    retry_failed,
)
from cloudwatcher.daemon.ops.status import STALE_AFTER_SECONDS
from tests.support.instances import an_instance
from tests.support.rows import one_row


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
    row = await one_row(
        ledger.pool, "SELECT sync_status, attempts, last_error FROM cloud_file_refs WHERE id = $1", gave_up.id
    )
    assert (row["sync_status"], row["attempts"]) == ("pending", 0)


async def test_synced_rows_keep_what_the_provider_reported(ledger: Ledger) -> None:
    await ledger.record([("a", "local", version("f"))])
    (row,) = await ledger.claim("a", 10, 30, None)
    synced = SyncedRow(row.id, row.claim_token, "/m/dev/requests/f", "id-1", 1, "sha256:ab", "hash")
    assert await ledger.mark_synced([synced], None) == 0
    stored = await one_row(ledger.pool, "SELECT * FROM cloud_file_refs WHERE id = $1", row.id)
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


# ---------------------------------------------------------------- claim fencing


async def stall(pool: asyncpg.Pool, instance_id: UUID | None) -> None:
    """The instance stalled for longer than a lease: neither heartbeats nor renewals."""
    await pool.execute(
        "UPDATE instances SET last_heartbeat = now() - make_interval(secs => $2) WHERE id = $1",
        instance_id,
        LEASE_SECONDS + 5,
    )


async def lose_the_lease(ledger: Ledger, holder: UUID | None = None) -> None:
    """The holder stalled past its lease and the reaper gave the row back."""
    await stall(ledger.pool, holder)
    await ledger.pool.execute("UPDATE cloud_file_refs SET lease_expires_at = now() - interval '1 second'")
    assert await ledger.reap_expired_leases() == {"a"}


async def a_claim_taken_over(ledger: Ledger, stalled: UUID | None, other: UUID | None) -> tuple[ClaimedRow, ClaimedRow]:
    """One row claimed by ``stalled``, reaped after its lease ran out, claimed by ``other``."""
    await ledger.record([("a", "local", version("f"))])
    (stale,) = await ledger.claim("a", 10, 30, stalled)
    await lose_the_lease(ledger, stalled)
    (current,) = await ledger.claim("a", 10, 30, other)
    return stale, current


WriteBack = Callable[[Ledger, ClaimedRow, UUID | None], Awaitable[int]]


async def write_synced(ledger: Ledger, row: ClaimedRow, instance_id: UUID | None) -> int:
    return await ledger.mark_synced(
        [SyncedRow(row.id, row.claim_token, "/m/f", None, 1, "sha256:ab", "hash")], instance_id
    )


async def write_failed(ledger: Ledger, row: ClaimedRow, instance_id: UUID | None) -> int:
    return await ledger.mark_failed([FailedRow(row.id, row.claim_token, "403 forbidden", None)], instance_id)


async def write_release(ledger: Ledger, row: ClaimedRow, instance_id: UUID | None) -> int:
    return await ledger.release({row.id: row.claim_token}, instance_id)


async def write_renewal(ledger: Ledger, row: ClaimedRow, instance_id: UUID | None) -> int:
    held, _ = await ledger.renew_leases({row.id: row.claim_token}, 3600, instance_id)
    return 1 - len(held)


async def write_session(ledger: Ledger, row: ClaimedRow, instance_id: UUID | None) -> int:
    saved = await ledger.save_upload_session(row.id, row.claim_token, instance_id, {"uploadUrl": "https://x/1"})
    return 0 if saved else 1


WRITE_BACKS = pytest.mark.parametrize(
    "write_back",
    [write_synced, write_failed, write_release, write_renewal, write_session],
    ids=["synced", "failed", "release", "lease-renewal", "upload-session"],
)


async def ledger_state(ledger: Ledger) -> list[asyncpg.Record]:
    rows = await ledger.pool.fetch("SELECT * FROM cloud_file_refs ORDER BY id")
    events = await ledger.pool.fetch("SELECT * FROM notification_events")
    return [*rows, *events]


@WRITE_BACKS
async def test_a_write_back_whose_claim_another_instance_took_changes_nothing_and_says_so(
    ledger: Ledger, write_back: WriteBack
) -> None:
    stalled, other = await an_instance(ledger.pool), await an_instance(ledger.pool)
    stale, current = await a_claim_taken_over(ledger, stalled, other)
    before = await ledger_state(ledger)

    assert await write_back(ledger, stale, stalled) == 1  # reported lost

    assert await ledger_state(ledger) == before
    held, _ = await ledger.renew_leases({current.id: current.claim_token}, 30, other)
    assert held == {current.id}, "the other instance still holds its claim"


@WRITE_BACKS
async def test_a_write_back_with_the_instances_own_stale_claim_token_changes_nothing(
    ledger: Ledger, write_back: WriteBack
) -> None:
    # The same instance lost its lease and claimed the row again: only the new claim counts.
    instance = await an_instance(ledger.pool)
    stale, current = await a_claim_taken_over(ledger, instance, instance)
    assert stale.claim_token != current.claim_token
    before = await ledger_state(ledger)

    assert await write_back(ledger, stale, instance) == 1

    assert await ledger_state(ledger) == before
    assert await write_back(ledger, current, instance) == 0  # the current claim writes back


@WRITE_BACKS
async def test_a_write_back_with_the_right_token_from_another_instance_changes_nothing(
    ledger: Ledger, write_back: WriteBack
) -> None:
    holder, stranger = await an_instance(ledger.pool), await an_instance(ledger.pool)
    await ledger.record([("a", "local", version("f"))])
    (claimed,) = await ledger.claim("a", 10, 30, holder)
    before = await ledger_state(ledger)

    assert await write_back(ledger, claimed, stranger) == 1

    assert await ledger_state(ledger) == before


async def test_a_lost_claim_among_a_batch_of_results_leaves_only_that_row_alone(ledger: Ledger) -> None:
    stalled, other = await an_instance(ledger.pool), await an_instance(ledger.pool)
    await ledger.record([("a", "local", version(f"f{i}", str(i).encode())) for i in range(50)])
    claimed = await ledger.claim("a", 50, 30, stalled)
    taken = claimed[7]
    await stall(ledger.pool, stalled)
    await ledger.pool.execute(
        "UPDATE cloud_file_refs SET lease_expires_at = now() - interval '1 second' WHERE id = $1", taken.id
    )
    await ledger.reap_expired_leases()
    (retaken,) = await ledger.claim("a", 10, 30, other)
    assert retaken.id == taken.id

    results = [SyncedRow(r.id, r.claim_token, f"/m/{r.local_path}", None, 1, "sha256:ab", "hash") for r in claimed]
    assert await ledger.mark_synced(results, stalled) == 1

    rows = await ledger.pool.fetch("SELECT id, sync_status, claimed_by, uploaded_by FROM cloud_file_refs")
    by_id = {row["id"]: row for row in rows}
    assert (by_id[taken.id]["sync_status"], by_id[taken.id]["claimed_by"]) == ("uploading", other)
    others = [row for row in rows if row["id"] != taken.id]
    assert {(row["sync_status"], row["uploaded_by"]) for row in others} == {("synced", stalled)}


async def test_a_gave_up_row_whose_claim_was_lost_is_not_announced(ledger: Ledger) -> None:
    stalled, other = await an_instance(ledger.pool), await an_instance(ledger.pool)
    stale, _ = await a_claim_taken_over(ledger, stalled, other)
    assert await write_failed(ledger, stale, stalled) == 1
    assert await ledger.pool.fetchval("SELECT count(*) FROM notification_events") == 0


async def test_rows_born_claimed_carry_the_token_their_write_back_needs(ledger: Ledger) -> None:
    instance = await an_instance(ledger.pool)
    recorded = await ledger.record_and_claim([("a", "local", version("f"))], {"a": 1}, instance_id=instance)
    (born,) = recorded.claimed["a"]
    stored = await one_row(ledger.pool, "SELECT claimed_by, claim_token FROM cloud_file_refs WHERE id = $1", born.id)
    assert (stored["claimed_by"], stored["claim_token"]) == (instance, born.claim_token)
    assert born.lease_surely_held()

    await lose_the_lease(ledger, instance)
    (again,) = await ledger.claim("a", 10, 30, instance)
    assert await write_synced(ledger, born, instance) == 1  # the born claim was lost
    assert await write_synced(ledger, again, instance) == 0
    assert await ledger.pool.fetchval("SELECT sync_status FROM cloud_file_refs") == "synced"


async def test_every_claim_gets_a_token_of_its_own(ledger: Ledger) -> None:
    await ledger.record([("a", "local", version(f"f{i}", str(i).encode())) for i in range(20)])
    claimed = await ledger.claim("a", 20, 30, None)
    assert len({row.claim_token for row in claimed}) == 20


async def test_a_released_or_written_back_row_keeps_no_claim(ledger: Ledger) -> None:
    await ledger.record([("a", "local", version("f")), ("a", "local", version("g", b"g"))])
    first, second = await ledger.claim("a", 10, 30, None)
    assert await write_release(ledger, first, None) == 0
    assert await write_synced(ledger, second, None) == 0
    rows = await ledger.pool.fetch("SELECT sync_status, claimed_by, claim_token, lease_expires_at FROM cloud_file_refs")
    assert sorted(row["sync_status"] for row in rows) == ["pending", "synced"]
    assert all(row["claimed_by"] is None and row["claim_token"] is None for row in rows)
    assert all(row["lease_expires_at"] is None for row in rows)


async def test_start_up_frees_the_claims_of_a_stale_instance_but_never_of_a_live_lookalike(ledger: Ledger) -> None:
    # Same host name, same pid: a cloned VM or container. Only the heartbeat tells them apart.
    me = await an_instance(ledger.pool)
    live = await an_instance(ledger.pool, heartbeat_age_seconds=5)
    dead = await an_instance(ledger.pool, heartbeat_age_seconds=STALE_AFTER_SECONDS + 30)
    await ledger.record([("a", "local", version(f"f{i}", str(i).encode())) for i in range(4)])
    (of_live,) = await ledger.claim("a", 1, 30, live)
    (of_dead,) = await ledger.claim("a", 1, 30, dead)
    (of_mine,) = await ledger.claim("a", 1, 30, me)

    assert await release_claims_of_dead_instances(ledger.pool, me) == 1

    rows = await ledger.pool.fetch("SELECT id, sync_status, claimed_by FROM cloud_file_refs")
    by_id = {row["id"]: (row["sync_status"], row["claimed_by"]) for row in rows}
    assert by_id[of_dead.id] == ("pending", None)
    assert by_id[of_live.id] == ("uploading", live)
    assert by_id[of_mine.id] == ("uploading", me)


async def test_an_expired_lease_of_a_live_instance_is_not_reaped_until_it_falls_silent(ledger: Ledger) -> None:
    live = await an_instance(ledger.pool)
    await ledger.record([("a", "local", version("f"))])
    (claimed,) = await ledger.claim("a", 10, 30, live)
    await ledger.pool.execute("UPDATE cloud_file_refs SET lease_expires_at = now() - interval '1 second'")

    assert await ledger.reap_expired_leases() == set()  # it still heartbeats: its claim stands
    held, _ = await ledger.renew_leases({claimed.id: claimed.claim_token}, 30, live)
    assert held == {claimed.id}

    await ledger.pool.execute("UPDATE cloud_file_refs SET lease_expires_at = now() - interval '1 second'")
    await stall(ledger.pool, live)
    assert await ledger.reap_expired_leases() == {"a"}
    assert await ledger.pool.fetchval("SELECT sync_status FROM cloud_file_refs") == "pending"


async def test_an_expired_lease_of_a_stopped_instance_is_reaped(ledger: Ledger) -> None:
    stopped = await an_instance(ledger.pool)
    await ledger.record([("a", "local", version("f"))])
    await ledger.claim("a", 10, 30, stopped)
    await ledger.pool.execute("UPDATE instances SET stopped_at = now() WHERE id = $1", stopped)
    await ledger.pool.execute("UPDATE cloud_file_refs SET lease_expires_at = now() - interval '1 second'")
    assert await ledger.reap_expired_leases() == {"a"}
