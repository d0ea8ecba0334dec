"""The seed design's schema, complete: response metadata written, audit_logs tied to users, every table audited."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg
import pytest

from cloudwatcher import __version__
from cloudwatcher.domain import note_device_activity
from tests.support.domain import Devices, email, envelope


async def metadata_of(db: asyncpg.Connection, request_id: str) -> dict[str, str]:
    rows = await db.fetch(
        "SELECT m.key, m.value FROM response_metadata m JOIN responses r ON r.id = m.response_id "
        "WHERE r.request_id = $1::uuid",
        request_id,
    )
    return {row["key"]: row["value"] for row in rows}


async def test_the_daemons_responses_carry_their_metadata(devices: Devices, db: asyncpg.Connection) -> None:
    good, bad = str(uuid.uuid4()), str(uuid.uuid4())
    await devices.send(
        "truck-n101", "parts.json", envelope("get_parts", "tom.hughes", {"location": "Truck N-101"}, request_id=good)
    )
    await devices.send(
        "truck-n101", "nope.json", envelope("get_parts", "nobody@else.example", {"location": "X"}, request_id=bad)
    )
    assert await metadata_of(db, good) == {"source": "daemon", "daemon_version": __version__, "status": "completed"}
    assert await metadata_of(db, bad) == {
        "source": "daemon",
        "daemon_version": __version__,
        "status": "failed",
        "error_code": "unknown_user",
    }


async def pending_request(devices: Devices) -> str:
    request_id = str(uuid.uuid4())
    document = envelope("diagnose_fault", "tom.hughes", {"dtc": "P0420"}, request_id=request_id)
    assert await devices.send("truck-n101", "diag.json", document) is None
    return request_id


async def test_a_processors_answer_stores_its_own_metadata_and_the_agent(
    devices: Devices, db: asyncpg.Connection
) -> None:
    request_id = await pending_request(devices)
    answer: dict[str, Any] = {
        "request_id": request_id,
        "status": "completed",
        "result": {"diagnosis": "catalytic converter"},
        "agent": {"name": "DiagnosticsAgent", "confidence": 0.8},
        "metadata": {"model": "diag-7", "tokens": 812, "reviewed": False, "source": "spoofed"},
    }
    await devices.answer("truck-n101", "diag.json", answer)
    assert await metadata_of(db, request_id) == {
        "model": "diag-7",
        "tokens": "812",
        "reviewed": "false",
        "source": "processor",  # the processor cannot pass itself off as the daemon
        "status": "completed",
        "agent": "DiagnosticsAgent",
    }


@pytest.mark.parametrize(
    "metadata",
    [
        {"k" * 101: "key longer than the column"},
        {f"key{i}": i for i in range(101)},
        {"nested": {"objects": "are not metadata"}},
        {"": "empty key"},
    ],
    ids=["long-key", "too-many", "nested", "empty-key"],
)
async def test_hostile_answer_metadata_is_refused_and_changes_nothing(
    devices: Devices, db: asyncpg.Connection, metadata: dict[str, Any]
) -> None:
    request_id = await pending_request(devices)
    answer = {"request_id": request_id, "status": "completed", "result": {}, "metadata": metadata}
    await devices.answer("truck-n101", "diag.json", answer)
    assert await db.fetchval("SELECT status FROM requests WHERE id = $1::uuid", request_id) == "pending"
    assert await db.fetchval("SELECT count(*) FROM response_metadata") == 0


async def test_audit_rows_can_only_name_a_known_user(devices: Devices, db: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await db.execute(
            "INSERT INTO audit_logs (table_name, operation, user_id) VALUES ('users', 'INSERT', $1)", uuid.uuid4()
        )


async def test_an_unknown_acting_user_is_audited_without_a_user_and_the_change_still_happens(
    devices: Devices, db: asyncpg.Connection
) -> None:
    async with db.transaction():
        await db.execute("SELECT set_config('cloudwatcher.user_id', $1, true)", str(uuid.uuid4()))
        await db.execute("UPDATE suppliers SET lead_time_days = 99 WHERE name = 'Northern Filters Ltd'")
    row = await db.fetchrow(
        "SELECT user_id FROM audit_logs WHERE table_name = 'suppliers' AND operation = 'UPDATE' "
        "ORDER BY created_at DESC LIMIT 1"
    )
    assert row is not None and row["user_id"] is None
    assert await db.fetchval("SELECT lead_time_days FROM suppliers WHERE name = 'Northern Filters Ltd'") == 99


async def test_request_metadata_order_history_and_device_sessions_are_audited(
    devices: Devices, db: asyncpg.Connection
) -> None:
    await devices.send(
        "tablet-1",
        "order.json",
        envelope(
            "create_order",
            "rita.kowalski",
            {"location": "North Depot", "items": [{"part_code": "OIL-FLT-01", "quantity": 10}]},
            request_id=str(uuid.uuid4()),
            metadata={"app_version": "2.1.0"},
        ),
    )
    async with db.transaction():
        await note_device_activity(db, {"tablet-1": dt.datetime.now(dt.UTC)})
    rita = await db.fetchval("SELECT id FROM users WHERE email = $1", email("rita.kowalski"))
    audited = {
        row["table_name"]: row["user_id"]
        for row in await db.fetch(
            "SELECT table_name, user_id FROM audit_logs "
            "WHERE table_name IN ('request_metadata', 'order_history', 'device_connections')"
        )
    }
    assert set(audited) == {"request_metadata", "order_history", "device_connections"}
    assert audited["order_history"] == rita and audited["request_metadata"] == rita
