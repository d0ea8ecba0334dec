"""Audit rows come from triggers and carry the acting user; audit_logs is partitioned by year."""

from __future__ import annotations

import datetime as dt
import json

import asyncpg

from cloudwatcher.domain import ensure_audit_partitions
from tests.support.domain import Devices, email


async def test_business_changes_are_audited_with_the_acting_user(devices: Devices, db: asyncpg.Connection) -> None:
    tom = await db.fetchval("SELECT id FROM users WHERE email = $1", email("tom.hughes"))
    response = await devices.consume("use.json", [{"part_code": "BLB-H7", "quantity": 2}])
    assert response is not None and response["status"] == "completed"
    rows = await db.fetch(
        "SELECT table_name, operation, user_id, old_values, new_values FROM audit_logs "
        "WHERE user_id = $1 ORDER BY created_at",
        tom,
    )
    touched = {(r["table_name"], r["operation"]) for r in rows}
    assert {
        ("inventory", "UPDATE"),
        ("part_consumption", "INSERT"),
        ("requests", "INSERT"),
        ("responses", "INSERT"),
    } <= touched
    inventory = next(r for r in rows if r["table_name"] == "inventory")
    assert json.loads(inventory["old_values"])["quantity_on_hand"] == 6
    assert json.loads(inventory["new_values"])["quantity_on_hand"] == 4


async def test_a_failed_request_leaves_no_business_audit_rows(devices: Devices, db: asyncpg.Connection) -> None:
    before = await db.fetchval("SELECT count(*) FROM audit_logs WHERE table_name NOT IN ('requests', 'responses')")
    response = await devices.consume("greedy.json", [{"part_code": "BLB-H7", "quantity": 99}])
    assert response is not None and response["error"]["code"] == "insufficient_stock"
    after = await db.fetchval("SELECT count(*) FROM audit_logs WHERE table_name NOT IN ('requests', 'responses')")
    assert after == before


async def test_audit_partitions_exist_ahead_and_absorb_rows_from_the_default_partition(db: asyncpg.Connection) -> None:
    year = dt.datetime.now(dt.UTC).year
    await db.execute(
        "INSERT INTO audit_logs (table_name, operation, created_at) VALUES ('x', 'INSERT', $1)",
        dt.datetime(year + 3, 6, 1, tzinfo=dt.UTC),
    )
    assert await db.fetchval("SELECT count(*) FROM audit_logs_default") == 1
    await ensure_audit_partitions(db, years_ahead=3)
    await ensure_audit_partitions(db, years_ahead=3)  # idempotent
    partitions = {
        r["name"]
        for r in await db.fetch(
            "SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'audit_logs'::regclass"
        )
    }
    assert {f"audit_logs_y{year + n}" for n in range(4)} <= partitions
    assert await db.fetchval("SELECT count(*) FROM audit_logs_default") == 0
    assert await db.fetchval(f"SELECT count(*) FROM audit_logs_y{year + 3}") == 1
