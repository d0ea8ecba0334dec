"""Exactly once: duplicates by request_id or by bytes, repeated calls, crashes and races."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg

from cloudwatcher.domain import archive_old_requests, process_request_file, unprocessed_files
from tests.support.domain import Devices, envelope, stock

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


async def test_another_device_reusing_a_request_id_gets_conflict_and_never_the_first_response(
    devices: Devices, db: asyncpg.Connection
) -> None:
    request_id = str(uuid.uuid4())
    first = await devices.send(
        "truck-n101", "a.json", envelope("consume_parts", "tom.hughes", TAKE_ONE, request_id=request_id)
    )
    # Device B replays A's request_id, even with A's very bytes.
    copied = (devices.root / "truck-n101" / "requests" / "a.json").read_bytes()
    stolen = await devices.send("truck-n102", "a.json", copied)
    assert first is not None and first["status"] == "completed"
    assert stolen is not None and stolen["status"] == "failed" and stolen["error"]["code"] == "conflict"
    assert stolen["request_id"] == request_id  # B's own id, so B can match the answer
    assert "result" not in stolen and "BLB-H7" not in json.dumps(stolen)
    assert await stock(db, "Truck N-101", "BLB-H7") == 5  # applied once, by A
    rows = await db.fetch("SELECT id::text, device_id, status, error_code FROM requests ORDER BY device_id")
    assert [(r["device_id"], r["status"], r["error_code"]) for r in rows] == [
        ("truck-n101", "completed", None),
        ("truck-n102", "failed", "conflict"),
    ]
    assert rows[0]["id"] == request_id and rows[1]["id"] != request_id
    # A's own retry is still A's duplicate, answered with A's response.
    again = await devices.send(
        "truck-n101", "retry.json", envelope("consume_parts", "tom.hughes", TAKE_ONE, request_id=request_id, n=2)
    )
    assert again == first


async def test_a_request_id_first_used_by_another_device_blocks_only_the_later_device(
    devices: Devices, db: asyncpg.Connection
) -> None:
    request_id = str(uuid.uuid4())
    squatter = await devices.send(
        "truck-n102",
        "squat.json",
        envelope("get_parts", "tom.hughes", {"location": "Truck N-102"}, request_id=request_id),
    )
    late = await devices.send(
        "truck-n101", "late.json", envelope("consume_parts", "tom.hughes", TAKE_ONE, request_id=request_id)
    )
    assert squatter is not None and squatter["status"] == "completed"
    assert late is not None and late["error"]["code"] == "conflict" and late["request_id"] == request_id
    assert "Truck N-102" not in json.dumps(late)
    assert await stock(db, "Truck N-101", "BLB-H7") == 6  # nothing applied for the later device


async def test_the_conflicting_device_sending_its_request_id_again_gets_the_same_conflict(
    devices: Devices, db: asyncpg.Connection
) -> None:
    request_id = str(uuid.uuid4())
    await devices.send("truck-n101", "a.json", envelope("get_parts", "tom.hughes", TAKE_ONE, request_id=request_id))
    first = await devices.send(
        "truck-n102", "b.json", envelope("get_parts", "tom.hughes", {"location": "X"}, request_id=request_id)
    )
    second = await devices.send(
        "truck-n102", "c.json", envelope("get_parts", "tom.hughes", {"location": "Y"}, request_id=request_id)
    )
    assert first is not None and first["error"]["code"] == "conflict"
    assert second == first  # a duplicate of B's own request: same key (device, request_id)
    assert await db.fetchval("SELECT count(*) FROM requests WHERE device_id = 'truck-n102'") == 1


async def test_an_invalid_envelope_reusing_another_devices_request_id_gets_conflict(
    devices: Devices, db: asyncpg.Connection
) -> None:
    request_id = str(uuid.uuid4())
    first = await devices.send(
        "truck-n101", "a.json", envelope("get_parts", "tom.hughes", {"location": "Truck N-101"}, request_id=request_id)
    )
    broken = await devices.send("truck-n102", "b.json", {"type": "get_parts", "request_id": request_id})
    assert first is not None and broken is not None
    assert broken["status"] == "failed" and broken["error"]["code"] == "conflict"
    assert "items" not in json.dumps(broken)


async def test_an_archived_request_id_is_still_another_devices(devices: Devices, db: asyncpg.Connection) -> None:
    request_id = str(uuid.uuid4())
    await devices.send("truck-n101", "a.json", envelope("consume_parts", "tom.hughes", TAKE_ONE, request_id=request_id))
    await db.execute("UPDATE requests SET created_at = now() - interval '100 days'")
    await db.execute("UPDATE cloud_file_refs SET sync_status = 'synced', uploaded_at = now(), local_state = 'archived'")
    assert await archive_old_requests(db, 90) == 1
    late = await devices.send(
        "truck-n102", "a.json", envelope("consume_parts", "tom.hughes", TAKE_ONE, request_id=request_id)
    )
    assert late is not None and late["error"]["code"] == "conflict"
    # ...while the first device's own retry is recognised in the archive and not applied again.
    retry = await devices.send(
        "truck-n101", "retry.json", envelope("consume_parts", "tom.hughes", TAKE_ONE, request_id=request_id, n=2)
    )
    assert retry is not None and retry["status"] == "completed" and retry["request_id"] == request_id
    assert await stock(db, "Truck N-101", "BLB-H7") == 5


async def test_the_daemons_own_conflict_response_is_linked_to_the_conflicting_request(
    devices: Devices, db: asyncpg.Connection
) -> None:
    request_id = str(uuid.uuid4())
    await devices.send("truck-n101", "a.json", envelope("get_parts", "tom.hughes", TAKE_ONE, request_id=request_id))
    await devices.send("truck-n102", "a.json", envelope("get_parts", "tom.hughes", TAKE_ONE, request_id=request_id))
    data = (devices.root / "truck-n102" / "responses" / "a.json").read_bytes()
    await devices.answer("truck-n102", "a.json", data)  # the daemon notices its own file
    linked = await db.fetchval(
        "SELECT r.device_id FROM cloud_file_refs f JOIN responses s ON s.id = f.response_id "
        "JOIN requests r ON r.id = s.request_id WHERE f.local_path = 'truck-n102/responses/a.json'"
    )
    assert linked == "truck-n102"
