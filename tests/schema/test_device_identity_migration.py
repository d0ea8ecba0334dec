"""Migration 0011 (device identity) on a database that already holds requests: every existing
row stays valid and keeps its meaning (its id is the request_id its own device sent)."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from cloudwatcher.schema import apply_migrations, available_migrations

DEVICE_IDENTITY = 11


async def test_existing_requests_stay_valid_and_keep_their_device_scoped_ids(
    empty_database_url: str,
) -> None:
    connection = await asyncpg.connect(empty_database_url)
    try:
        for migration in available_migrations():
            if migration.version < DEVICE_IDENTITY:
                await connection.execute(migration.sql)
        a, b, archived = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        await connection.execute(
            "INSERT INTO requests (id, device_id, request_type, status, payload_hash) VALUES "
            "($1, 'truck-a', 'get_parts', 'completed', repeat('a', 64)), "
            "($2, 'truck-b', 'get_parts', 'failed', repeat('b', 64))",
            a,
            b,
        )
        await connection.execute(
            "INSERT INTO requests_archive (id, device_id, request_type, status, payload_hash) "
            "VALUES ($1, 'truck-a', 'consume_parts', 'completed', repeat('c', 64))",
            archived,
        )
        before = await connection.fetch("SELECT * FROM requests ORDER BY id")
        await connection.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        await connection.executemany(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            [(m.version, m.name) for m in available_migrations() if m.version < DEVICE_IDENTITY],
        )
        applied = await apply_migrations(connection)
        assert DEVICE_IDENTITY in [m.version for m in applied]

        after = await connection.fetch("SELECT * FROM requests ORDER BY id")
        columns = list(before[0].keys())  # iterating a Record yields its values, not its names
        assert [{column: row[column] for column in columns} for row in after] == [dict(row) for row in before]
        assert {r["device_request_id"] for r in after} == {None}
        # The id each row had is its device's request_id, live or archived...
        key = "SELECT id FROM {} WHERE device_id = $1 AND coalesce(device_request_id, id) = $2"
        assert await connection.fetchval(key.format("requests"), "truck-a", a) == a
        assert await connection.fetchval(key.format("requests_archive"), "truck-a", archived) == archived
        # ...unique per device: the same device cannot hold it twice...
        with pytest.raises(asyncpg.UniqueViolationError):
            await connection.execute(
                "INSERT INTO requests (device_id, request_type, payload_hash, device_request_id) "
                "VALUES ('truck-a', 'get_parts', repeat('d', 64), $1)",
                a,
            )
        # ...while another device reusing it is recorded under a fresh id.
        await connection.execute(
            "INSERT INTO requests (device_id, request_type, status, payload_hash, device_request_id) "
            "VALUES ('truck-b', 'get_parts', 'failed', repeat('e', 64), $1)",
            a,
        )
        assert await connection.fetchval(key.format("requests"), "truck-b", a) not in (None, a)
    finally:
        await connection.close()
