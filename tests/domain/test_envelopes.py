"""Bad input: every error code, the failed request row, and no business row changed."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from cloudwatcher.domain import process_request_file
from tests.support.domain import Devices, business_fingerprint, envelope, request_row
from tests.support.rows import one_row

CONSUME = {"location": "Truck N-101", "items": [{"part_code": "BLB-H7", "quantity": 1}]}


async def _fails_with(
    devices: Devices, db: asyncpg.Connection, data: dict[str, Any] | bytes, code: str
) -> dict[str, Any]:
    before = await business_fingerprint(db)
    response = await devices.send("truck-n101", "bad.json", data)
    assert response is not None, "a failed request is still answered"
    assert response["status"] == "failed", response
    assert response["error"]["code"] == code, response
    assert response["error"]["message"]
    assert await business_fingerprint(db) == before
    row = await request_row(db, response["request_id"])
    assert row is not None and row["status"] == "failed" and row["error_code"] == code
    stored = await db.fetchval("SELECT content::text FROM responses WHERE request_id = $1", row["id"])
    assert json.loads(stored) == response
    return response


@pytest.mark.parametrize(
    "data",
    [
        b"{not json",
        b'{"type": "get_parts", "user": "\xff\xfe"}',
        b"[" * 20_000 + b"]" * 20_000,
        b"",
        b'{"type": "get_parts", "user": "a@b", "payload": {"x": NaN}}',
    ],
    ids=["malformed", "not-utf8", "deeply-nested", "empty", "nan"],
)
async def test_bytes_that_are_not_json_are_invalid_json(devices: Devices, db: asyncpg.Connection, data: bytes) -> None:
    response = await _fails_with(devices, db, data, "invalid_json")
    row = await request_row(db, response["request_id"])
    assert row is not None and row["request_type"] == "invalid"


@pytest.mark.parametrize(
    "document",
    [
        [1, 2, 3],
        {"user": "tom.hughes@northwind-fleet.example", "payload": CONSUME},
        {"type": "consume_parts", "payload": CONSUME},
        {"type": 7, "user": "tom.hughes@northwind-fleet.example"},
        envelope(
            "consume_parts",
            "tom.hughes",
            {"location": "Truck N-101", "items": [{"part_code": "BLB-H7", "quantity": -1}]},
        ),
        envelope(
            "consume_parts",
            "tom.hughes",
            {"location": "Truck N-101", "items": [{"part_code": "BLB-H7", "quantity": 10**12}]},
        ),
        envelope(
            "consume_parts",
            "tom.hughes",
            {"location": "Truck N-101", "items": [{"part_code": "BLB-H7", "quantity": "1"}]},
        ),
        envelope("consume_parts", "tom.hughes", {"location": "Truck N-101", "items": []}),
        envelope("consume_parts", "tom.hughes", {"location": "Truck N-101", "itmes": []}),
        envelope(
            "update_inventory",
            "tom.hughes",
            {"location": "Truck N-101", "counts": [{"part_code": "BLB-H7", "quantity_on_hand": -3}]},
        ),
        envelope("approve_order", "sam.becker", {"order_id": "not-a-uuid"}),
        envelope("get_parts", "tom.hughes", {"location": "Truck N-101"}, metadata={"nested": {"a": 1}}),
        envelope("get_parts", "tom.hughes", {"location": "Truck N-101"}, attachments=["../../etc/passwd"]),
        envelope("get_parts", "tom.hughes", {"location": "Truck N-101"}, request_id="1234"),
    ],
    ids=[
        "not-an-object",
        "no-type",
        "no-user",
        "type-not-string",
        "negative-quantity",
        "huge-quantity",
        "quantity-as-string",
        "no-items",
        "misspelt-key",
        "negative-count",
        "bad-order-id",
        "nested-metadata",
        "escaping-attachment",
        "bad-request-id",
    ],
)
async def test_wrong_shapes_are_invalid_request(devices: Devices, db: asyncpg.Connection, document: Any) -> None:
    data = json.dumps(document).encode()
    response = await _fails_with(devices, db, data, "invalid_request")
    row = await request_row(db, response["request_id"])
    assert row is not None and row["request_type"] == "invalid"


async def test_a_file_over_the_size_limit_is_too_large_and_not_read(devices: Devices, db: asyncpg.Connection) -> None:
    big = b'{"type": "get_parts", "padding": "' + b"x" * (devices.ctx.max_request_bytes + 10) + b'"}'
    file = await devices.drop("truck-n101", "huge.json", big)
    file.absolute_path.write_bytes(b"replaced: proves the file is not read")  # the ledger's size decides
    await process_request_file(devices.pool, file, devices.ctx)
    response = devices.response("truck-n101", "huge.json")
    assert response is not None and response["error"]["code"] == "too_large"
    row = await request_row(db, response["request_id"])
    assert row is not None and row["request_type"] == "invalid" and row["status"] == "failed"


async def test_device_id_must_match_the_folder(devices: Devices, db: asyncpg.Connection) -> None:
    await _fails_with(
        devices,
        db,
        envelope("consume_parts", "tom.hughes", CONSUME, device_id="truck-n102"),
        "device_mismatch",
    )


async def test_unknown_and_inactive_users_are_refused(devices: Devices, db: asyncpg.Connection) -> None:
    await _fails_with(devices, db, envelope("consume_parts", "nobody", CONSUME), "unknown_user")
    inactive = envelope(
        "consume_parts",
        "kevin.doyle",
        {"location": "South Depot", "items": [{"part_code": "CLT-5L", "quantity": 1}]},
    )
    response = await devices.send("truck-n101", "inactive.json", inactive)
    assert response is not None and response["error"]["code"] == "inactive_user"


async def test_missing_permission_is_forbidden(devices: Devices, db: asyncpg.Connection) -> None:
    # The auditor (viewer) may read stock but not consume it.
    await _fails_with(
        devices,
        db,
        envelope(
            "consume_parts",
            "auditor",
            {"location": "Central Warehouse", "items": [{"part_code": "OIL-FLT-01", "quantity": 1}]},
        ),
        "forbidden",
    )


async def test_unknown_location_part_or_variant_is_not_found(devices: Devices, db: asyncpg.Connection) -> None:
    await _fails_with(
        devices,
        db,
        envelope(
            "consume_parts",
            "tom.hughes",
            {"location": "Mars", "items": [{"part_code": "BLB-H7", "quantity": 1}]},
        ),
        "not_found",
    )
    response = await devices.consume("p.json", [{"part_code": "NOPE", "quantity": 1}])
    assert response is not None and response["error"]["code"] == "not_found"
    response = await devices.consume("v.json", [{"part_code": "BRK-PAD-F", "variant_code": "XX", "quantity": 1}])
    assert response is not None and response["error"]["code"] == "not_found"


async def test_metadata_is_stored_as_text(devices: Devices, db: asyncpg.Connection) -> None:
    document = envelope(
        "get_parts",
        "tom.hughes",
        {"location": "Truck N-101"},
        metadata={"app_version": "2.1.0", "battery": 81, "charging": True},
    )
    response = await devices.send("truck-n101", "m.json", document)
    assert response is not None and response["status"] == "completed"
    rows = await db.fetch("SELECT key, value FROM request_metadata ORDER BY key")
    assert [(r["key"], r["value"]) for r in rows] == [
        ("app_version", "2.1.0"),
        ("battery", "81"),
        ("charging", "true"),
    ]


async def test_request_row_records_who_and_where(devices: Devices, db: asyncpg.Connection) -> None:
    response = await devices.send(
        "truck-n101", "sub/dir/w.json", envelope("get_parts", "tom.hughes", {"location": "Truck N-101"})
    )
    assert response is not None
    row = await one_row(
        db,
        "SELECT r.*, u.email FROM requests r JOIN users u ON u.id = r.created_by WHERE r.id = $1::uuid",
        response["request_id"],
    )
    assert row["device_id"] == "truck-n101" and row["local_path"] == "truck-n101/requests/sub/dir/w.json"
    assert row["request_type"] == "get_parts" and row["status"] == "completed" and row["processed_at"] is not None
    assert row["email"] == "tom.hughes@northwind-fleet.example"
    assert len(row["payload_hash"]) == 64
    ledger = await db.fetchval("SELECT request_id::text FROM cloud_file_refs WHERE local_path = $1", row["local_path"])
    assert ledger == response["request_id"]
    response_row = await one_row(db, "SELECT status, local_path FROM responses WHERE request_id = $1", row["id"])
    assert (response_row["status"], response_row["local_path"]) == (
        "ready",
        "truck-n101/responses/sub/dir/w.json",
    )
