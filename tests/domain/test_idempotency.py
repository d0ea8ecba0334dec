"""Exactly once: duplicates by request_id or by bytes, repeated calls, crashes and races."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg

from cloudwatcher.domain import process_request_file, unprocessed_files
from tests.domain.conftest import Devices, envelope, stock

TAKE_ONE = {"location": "Truck N-101", "items": [{"part_code": "BLB-H7", "quantity": 1}]}


async def test_same_request_id_in_another_file_is_not_applied_again(devices: Devices, db: asyncpg.Connection) -> None:
    request_id = str(uuid.uuid4())
    first = await devices.send(
        "truck-n101", "a.json", envelope("consume_parts", "tom.hughes", TAKE_ONE, request_id=request_id)
    )
    again = envelope("consume_parts", "tom.hughes", TAKE_ONE, request_id=request_id, metadata={"retry": 1})
    second = await devices.send("truck-n101", "b.json", again)
    assert first is not None and first["request_id"] == request_id and first["status"] == "completed"
    assert second == first  # the first response, written at the duplicate's own path
    assert await stock(db, "Truck N-101", "BLB-H7") == 5
    assert await db.fetchval("SELECT count(*) FROM requests") == 1
    linked = await db.fetch(
        "SELECT local_path FROM cloud_file_refs WHERE request_id = $1::uuid ORDER BY local_path", request_id
    )
    assert [r["local_path"] for r in linked] == ["truck-n101/requests/a.json", "truck-n101/requests/b.json"]


async def test_same_bytes_from_the_same_device_are_a_duplicate(devices: Devices, db: asyncpg.Connection) -> None:
    document = envelope("consume_parts", "tom.hughes", TAKE_ONE)
    first = await devices.send("truck-n101", "one.json", document)
    second = await devices.send("truck-n101", "later/two.json", document)
    assert first is not None and second == first
    assert await stock(db, "Truck N-101", "BLB-H7") == 5
    # ...but the same bytes from another device are that device's own request.
    other = await devices.send(
        "truck-n102",
        "one.json",
        envelope(
            "consume_parts",
            "tom.hughes",
            {"location": "Truck N-102", "items": [{"part_code": "BLB-H7", "quantity": 1}]},
        ),
    )
    assert other is not None and other["request_id"] != first["request_id"]


async def test_calling_again_for_the_same_file_rewrites_a_missing_response_and_applies_nothing(
    devices: Devices, db: asyncpg.Connection
) -> None:
    file = await devices.drop("truck-n101", "once.json", envelope("consume_parts", "tom.hughes", TAKE_ONE))
    await process_request_file(devices.pool, file, devices.ctx)
    first = devices.response("truck-n101", "once.json")
    path = devices.root / "truck-n101" / "responses" / "once.json"
    path.unlink()  # lost, e.g. the disk was restored from a backup
    await process_request_file(devices.pool, file, devices.ctx)
    assert devices.response("truck-n101", "once.json") == first
    mtime = path.stat().st_mtime_ns
    await process_request_file(devices.pool, file, devices.ctx)
    assert path.stat().st_mtime_ns == mtime  # present and identical: not rewritten
    assert await stock(db, "Truck N-101", "BLB-H7") == 5
    assert await db.fetchval("SELECT count(*) FROM part_consumption") == 1


async def test_a_crash_between_commit_and_response_write_is_caught_up_after_restart(
    devices: Devices, db: asyncpg.Connection
) -> None:
    file = await devices.drop("truck-n101", "crash.json", envelope("consume_parts", "tom.hughes", TAKE_ONE))
    await process_request_file(devices.pool, file, devices.ctx)
    # Simulate the crash: the transaction committed, but the file and the 'ready' mark never happened.
    (devices.root / "truck-n101" / "responses" / "crash.json").unlink()
    await db.execute("UPDATE responses SET status = 'processing'")
    await db.execute("UPDATE cloud_file_refs SET processed_at = NULL")

    pending = await unprocessed_files(db, devices.root)  # what the daemon replays at start-up
    assert [(f.local_path, f.content_sha256, f.kind) for f in pending] == [
        (file.local_path, file.content_sha256, "request")
    ]
    for replay in pending:
        await process_request_file(devices.pool, replay, devices.ctx)
    response = devices.response("truck-n101", "crash.json")
    assert response is not None and response["status"] == "completed"
    assert await db.fetchval("SELECT status FROM responses") == "ready"
    assert await unprocessed_files(db, devices.root) == []
    assert await stock(db, "Truck N-101", "BLB-H7") == 5


async def test_two_daemons_racing_on_one_file_apply_it_once(devices: Devices, db: asyncpg.Connection) -> None:
    file = await devices.drop("truck-n101", "race.json", envelope("consume_parts", "tom.hughes", TAKE_ONE))
    await asyncio.gather(*(process_request_file(devices.pool, file, devices.ctx) for _ in range(4)))
    assert await stock(db, "Truck N-101", "BLB-H7") == 5
    assert await db.fetchval("SELECT count(*) FROM requests") == 1
    assert await db.fetchval("SELECT count(*) FROM part_consumption") == 1
    response = devices.response("truck-n101", "race.json")
    assert response is not None and response["status"] == "completed"


async def test_a_changed_file_is_a_new_request_and_the_old_version_is_skipped(
    devices: Devices, db: asyncpg.Connection
) -> None:
    old = await devices.drop("truck-n101", "edit.json", envelope("consume_parts", "tom.hughes", TAKE_ONE))
    new = await devices.drop(
        "truck-n101", "edit.json", envelope("consume_parts", "tom.hughes", TAKE_ONE, metadata={"v": 2})
    )
    await process_request_file(devices.pool, old, devices.ctx)  # its bytes are gone: skipped, marked processed
    assert devices.response("truck-n101", "edit.json") is None
    await process_request_file(devices.pool, new, devices.ctx)
    assert await stock(db, "Truck N-101", "BLB-H7") == 5
    assert await unprocessed_files(db, devices.root) == []


async def test_attachments_listed_in_the_envelope_are_linked_to_the_request(
    devices: Devices, db: asyncpg.Connection
) -> None:
    await devices.drop("truck-n101", "photos/brake.jpg", b"\xff\xd8jpeg bytes")
    document = envelope("get_parts", "tom.hughes", {"location": "Truck N-101"}, attachments=["photos/brake.jpg"])
    response = await devices.send("truck-n101", "with-photo.json", document)
    assert response is not None
    linked = await db.fetchval(
        "SELECT request_id::text FROM cloud_file_refs WHERE local_path = 'truck-n101/requests/photos/brake.jpg'"
    )
    assert linked == response["request_id"]


async def test_response_files_are_written_atomically_without_leftovers(devices: Devices) -> None:
    await devices.send("truck-n101", "clean.json", envelope("get_parts", "tom.hughes", {"location": "Truck N-101"}))
    names = sorted(p.name for p in (devices.root / "truck-n101" / "responses").iterdir())
    assert names == ["clean.json"]
    assert json.loads((devices.root / "truck-n101" / "responses" / "clean.json").read_text())["status"] == "completed"


async def test_unprocessed_files_lists_only_this_watch_roots_devices_oldest_first(
    devices: Devices, db: asyncpg.Connection
) -> None:
    first = await devices.drop("truck-n101", "1.json", envelope("get_parts", "tom.hughes", {"location": "Truck N-101"}))
    answer = await devices.record("truck-n101", "responses", "x.json", b"{}", "response")
    await devices.drop("truck-n101", "photo.jpg", b"jpeg")  # attachments are never listed
    await db.execute(
        "INSERT INTO cloud_file_refs (target, cloud_provider, device_id, local_path, file_type, content_sha256, "
        "file_size_bytes, file_mtime_ns) VALUES ('local', 'local', 'elsewhere', 'elsewhere/requests/a.json', "
        "'request', repeat('a', 64), 2, 0)"
    )  # a device of another daemon's watch root
    listed = await unprocessed_files(db, devices.root)
    assert [(f.local_path, f.kind) for f in listed] == [(first.local_path, "request"), (answer.local_path, "response")]
    assert listed[0] == first


async def test_files_outside_a_requests_folder_are_not_treated_as_envelopes(
    devices: Devices, db: asyncpg.Connection
) -> None:
    file = await devices.drop("truck-n101", "notes.txt", b"not an envelope")
    await process_request_file(devices.pool, file, devices.ctx)
    assert await db.fetchval("SELECT count(*) FROM requests") == 0
