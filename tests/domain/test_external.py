"""Unknown request types wait for an external processor, whose response files are ingested;
the daemon's own response files are linked to their ledger rows and delivered."""

from __future__ import annotations

import json
import os
import pwd
import uuid
from typing import Any

import asyncpg

from cloudwatcher.domain import mark_delivered_responses, process_response_file
from cloudwatcher.domain.processor_accounts import account_name
from tests.support.domain import Devices, business_fingerprint, envelope
from tests.support.rows import one_row


async def _pending(devices: Devices, db: asyncpg.Connection) -> str:
    request_id = str(uuid.uuid4())
    document = envelope("diagnose_fault", "tom.hughes", {"dtc": "P0420", "odometer_km": 182344}, request_id=request_id)
    response = await devices.send("truck-n101", "diag.json", document)
    assert response is None  # nobody answers this kind but an external processor
    row = await one_row(db, "SELECT request_type, status FROM requests WHERE id = $1::uuid", request_id)
    assert (row["request_type"], row["status"]) == ("diagnose_fault", "pending")
    return request_id


async def test_an_external_agents_answer_completes_the_pending_request(
    devices: Devices, db: asyncpg.Connection
) -> None:
    request_id = await _pending(devices, db)
    answer: dict[str, Any] = {
        "request_id": request_id,
        "status": "completed",
        "result": {"diagnosis": "catalytic converter efficiency below threshold", "action": "book workshop"},
        "agent": {
            "name": "DiagnosticsAgent",
            "decision_type": "diagnosis",
            "decision": "replace catalytic converter",
            "reasoning": {"dtc": "P0420", "similar_cases": 14},
            "confidence": 0.87,
        },
    }
    file = await devices.answer("truck-n101", "diag.json", answer)
    row = await one_row(db, "SELECT * FROM responses WHERE request_id = $1::uuid", request_id)
    assert row["ai_processed"] is True and row["status"] == "ready"
    assert json.loads(row["content"]) == answer
    assert await db.fetchval("SELECT status FROM requests WHERE id = $1::uuid", request_id) == "completed"
    decision = await one_row(db, "SELECT * FROM agent_decisions WHERE agent_name = 'DiagnosticsAgent'")
    assert decision["decision_value"] == "replace catalytic converter"
    assert float(decision["confidence_score"]) == 0.87
    assert json.loads(decision["reasoning"]) == {"dtc": "P0420", "similar_cases": 14}
    linked = await db.fetchval("SELECT response_id FROM cloud_file_refs WHERE local_path = $1", file.local_path)
    assert linked == row["id"]
    # Seen again (a restart): nothing changes.
    await process_response_file(devices.pool, file, devices.ctx)
    assert await db.fetchval("SELECT count(*) FROM responses") == 1
    assert await db.fetchval("SELECT count(*) FROM agent_decisions WHERE agent_name = 'DiagnosticsAgent'") == 1


async def test_a_failed_answer_without_agent_fails_the_request(devices: Devices, db: asyncpg.Connection) -> None:
    request_id = await _pending(devices, db)
    await devices.answer(
        "truck-n101",
        "diag.json",
        {"request_id": request_id, "status": "failed", "error": {"code": "unsupported", "message": "no"}},
    )
    row = await one_row(db, "SELECT status, error_code FROM requests WHERE id = $1::uuid", request_id)
    assert (row["status"], row["error_code"]) == ("failed", "unsupported")
    assert await db.fetchval("SELECT ai_processed FROM responses") is False


async def test_malformed_or_unmatched_answers_change_nothing(devices: Devices, db: asyncpg.Connection) -> None:
    request_id = await _pending(devices, db)
    before = await business_fingerprint(db)
    bad = [
        b"{broken",
        b"[]",
        json.dumps({"request_id": request_id, "status": "maybe"}).encode(),
        json.dumps({"request_id": str(uuid.uuid4()), "status": "completed", "result": {}}).encode(),
        json.dumps({"request_id": request_id, "status": "completed", "agent": {"name": "X", "confidence": 7}}).encode(),
    ]
    for index, data in enumerate(bad):
        await devices.answer("truck-n101", f"bad-{index}.json", data)
    # An answer for this request dropped into another device's folder is not accepted either.
    await devices.answer("truck-n102", "diag.json", {"request_id": request_id, "status": "completed", "result": {}})
    assert await business_fingerprint(db) == before
    assert await db.fetchval("SELECT count(*) FROM responses") == 0
    assert await db.fetchval("SELECT status FROM requests WHERE id = $1::uuid", request_id) == "pending"
    assert (
        await db.fetchval("SELECT count(*) FROM cloud_file_refs WHERE processed_at IS NULL AND file_type = 'response'")
        == 0
    )


async def test_the_daemons_own_response_is_linked_and_then_delivered(devices: Devices, db: asyncpg.Connection) -> None:
    devices.targets = ("local", "s3")
    response = await devices.send(
        "truck-n101", "own.json", envelope("get_parts", "tom.hughes", {"location": "Truck N-101"})
    )
    assert response is not None
    data = (devices.root / "truck-n101" / "responses" / "own.json").read_bytes()
    file = await devices.record("truck-n101", "responses", "own.json", data, "response")  # the daemon notices it
    await process_response_file(devices.pool, file, devices.ctx)
    response_id = await db.fetchval("SELECT id FROM responses")
    linked = await db.fetch("SELECT target, response_id FROM cloud_file_refs WHERE local_path = $1", file.local_path)
    assert {(r["target"], r["response_id"]) for r in linked} == {("local", response_id), ("s3", response_id)}

    await db.execute("UPDATE cloud_file_refs SET sync_status = 'synced', uploaded_at = now() WHERE target = 'local'")
    assert await mark_delivered_responses(db) == 0  # not on every target yet
    await db.execute("UPDATE cloud_file_refs SET sync_status = 'synced', uploaded_at = now()")
    assert await mark_delivered_responses(db) == 1
    row = await one_row(db, "SELECT status, delivered_at FROM responses")
    assert row["status"] == "delivered" and row["delivered_at"] is not None
    assert await mark_delivered_responses(db) == 0


def _unnamed_uid() -> int:
    """A uid the system has no user name for."""
    uid = 54_321
    while True:
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid
        uid += 1


async def test_an_agent_decision_records_the_processor_account_that_owns_the_answer_file(
    devices: Devices, db: asyncpg.Connection
) -> None:
    request_id = await _pending(devices, db)
    answer = {"request_id": request_id, "status": "completed", "result": {}, "agent": {"name": "DiagnosticsAgent"}}
    await devices.answer("truck-n101", "diag.json", answer)
    account = await db.fetchval("SELECT processor_account FROM agent_decisions WHERE agent_name = 'DiagnosticsAgent'")
    assert account == pwd.getpwuid(os.getuid()).pw_name


def test_a_processor_account_without_a_user_name_is_recorded_as_its_uid() -> None:
    uid = _unnamed_uid()
    assert account_name(uid) == str(uid)
    assert account_name(os.getuid()) == pwd.getpwuid(os.getuid()).pw_name
