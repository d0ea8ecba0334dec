"""Retention moves old finished requests with their dependants into the archive tables."""

from __future__ import annotations

import asyncpg

from cloudwatcher.domain import archive_old_requests, process_request_file
from tests.support.domain import Devices, envelope, stock

TAKE_ONE = {"location": "Truck N-101", "items": [{"part_code": "BLB-H7", "quantity": 1}]}


async def test_old_requests_move_to_the_archive_with_their_dependants(devices: Devices, db: asyncpg.Connection) -> None:
    old = await devices.send(
        "truck-n101", "old.json", envelope("consume_parts", "tom.hughes", TAKE_ONE, metadata={"k": "v"})
    )
    recent = await devices.send(
        "truck-n101", "new.json", envelope("get_parts", "tom.hughes", {"location": "Truck N-101"})
    )
    assert old is not None and recent is not None
    await db.execute(
        "UPDATE requests SET created_at = now() - interval '100 days' WHERE id = $1::uuid", old["request_id"]
    )
    await db.execute("UPDATE cloud_file_refs SET sync_status = 'synced', uploaded_at = now()")
    await db.execute(
        "UPDATE cloud_file_refs SET local_state = 'archived' WHERE local_path = 'truck-n101/requests/old.json'"
    )

    assert await archive_old_requests(db, 90) == 1
    assert await archive_old_requests(db, 90) == 0
    assert await db.fetchval("SELECT count(*) FROM requests") == 1
    assert await db.fetchval("SELECT id::text FROM requests_archive") == old["request_id"]
    assert await db.fetchval("SELECT count(*) FROM request_metadata_archive") == 1
    assert await db.fetchval("SELECT count(*) FROM responses_archive") == 1
    assert await db.fetchval("SELECT count(*) FROM agent_decisions_archive") == 1
    assert await db.fetchval("SELECT count(*) FROM cloud_file_refs_archive") == 1
    assert (
        await db.fetchval("SELECT count(*) FROM cloud_file_refs WHERE local_path = 'truck-n101/requests/old.json'") == 0
    )
    # The consumption itself is business history and stays.
    assert await db.fetchval("SELECT count(*) FROM part_consumption") == 1
    summary = await db.fetchval("SELECT count(*) FROM audit_logs WHERE change_reason LIKE 'retention:%'")
    assert summary >= 5


async def test_an_archived_request_seen_again_is_still_not_applied_twice(
    devices: Devices, db: asyncpg.Connection
) -> None:
    file = await devices.drop("truck-n101", "again.json", envelope("consume_parts", "tom.hughes", TAKE_ONE))
    await process_request_file(devices.pool, file, devices.ctx)
    await db.execute("UPDATE requests SET created_at = now() - interval '100 days'")
    await db.execute("UPDATE cloud_file_refs SET sync_status = 'synced', uploaded_at = now()")
    assert await archive_old_requests(db, 90) == 1
    await process_request_file(devices.pool, file, devices.ctx)  # the file is still in the watch root
    assert await stock(db, "Truck N-101", "BLB-H7") == 5
    assert await db.fetchval("SELECT count(*) FROM requests") == 0


async def test_requests_whose_files_are_still_uploading_or_pending_stay(
    devices: Devices, db: asyncpg.Connection
) -> None:
    await devices.send("truck-n101", "a.json", envelope("get_parts", "tom.hughes", {"location": "Truck N-101"}))
    await devices.send("truck-n101", "b.json", envelope("diagnose", "tom.hughes", {}))
    await db.execute("UPDATE requests SET created_at = now() - interval '100 days'")
    assert await archive_old_requests(db, 90) == 0  # a.json's ledger row is still pending; b.json awaits an answer
    assert await db.fetchval("SELECT count(*) FROM requests") == 2
