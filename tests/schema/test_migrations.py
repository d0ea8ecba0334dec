"""Migrations against a real PostgreSQL: from empty, twice, and concurrently."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from cloudwatcher.schema import apply_migrations, available_migrations

SEED_TABLES = {
    "users",
    "roles",
    "departments",
    "user_roles",
    "user_departments",
    "role_permissions",
    "requests",
    "request_metadata",
    "responses",
    "response_metadata",
    "device_connections",
    "cloud_file_refs",
    "parts",
    "part_variants",
    "suppliers",
    "part_suppliers",
    "inventory",
    "locations",
    "part_consumption",
    "orders",
    "order_items",
    "order_approvals",
    "order_history",
    "audit_logs",
    "agent_decisions",
    "instances",
}
LEDGER_COLUMNS = {
    "target",
    "local_path",
    "content_sha256",
    "attempts",
    "last_error",
    "next_attempt_at",
    "remote_id",
    "remote_size",
    "remote_hash",
    "verification",
    "updated_at",
    "sync_status",
    "cloud_path",
    "uploaded_at",
    "request_id",
    "response_id",
    "file_type",
    "cloud_provider",
    "file_size_bytes",
    "created_at",
    "uploaded_by",
}


async def test_migrations_create_the_whole_schema_and_a_second_run_changes_nothing(
    empty_database_url: str,
) -> None:
    connection = await asyncpg.connect(empty_database_url)
    try:
        applied = await apply_migrations(connection)
        assert [m.version for m in applied] == [m.version for m in available_migrations()]
        tables = {
            r["tablename"]
            for r in await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        assert tables >= SEED_TABLES
        columns = {
            r["column_name"]
            for r in await connection.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'cloud_file_refs'"
            )
        }
        assert columns >= LEDGER_COLUMNS
        schema_before = await connection.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY 1, 2"
        )
        assert await apply_migrations(connection) == []
        schema_after = await connection.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY 1, 2"
        )
        assert schema_before == schema_after
    finally:
        await connection.close()


async def test_concurrent_migrations_are_serialised(empty_database_url: str) -> None:
    connections = [await asyncpg.connect(empty_database_url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(apply_migrations(c) for c in connections))
        assert sorted(len(r) for r in results) == [0, 0, 0, len(available_migrations())]
        count = await connections[0].fetchval("SELECT count(*) FROM schema_migrations")
        assert count == len(available_migrations())
    finally:
        for connection in connections:
            await connection.close()


async def test_timestamps_are_timestamptz_and_statuses_are_checked(db: asyncpg.Connection) -> None:
    plain = await db.fetch(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
        "AND data_type = 'timestamp without time zone'"
    )
    assert plain == []
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute(
            "INSERT INTO cloud_file_refs (target, cloud_provider, device_id, local_path, file_type, content_sha256, "
            "file_size_bytes, file_mtime_ns, sync_status) VALUES ('t', 'local', 'd', 'd/requests/x', 'attachment', "
            "$1, 1, 1, 'lost')",
            "a" * 64,
        )


async def test_seed_query_patterns_use_composite_indexes(db: asyncpg.Connection) -> None:
    indexes = {r["indexdef"] for r in await db.fetch("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'")}
    assert any("requests USING btree (device_id, status, created_at DESC)" in i for i in indexes)
    assert any("inventory USING btree (location_id, quantity_available)" in i for i in indexes)
    assert any(
        "part_suppliers USING btree (part_id, variant_id, is_preferred DESC, supplier_cost)" in i for i in indexes
    )
    assert any("order_approvals" in i and "(order_id, approval_level)" in i for i in indexes)
