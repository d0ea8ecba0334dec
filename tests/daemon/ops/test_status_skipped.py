"""``skipped`` per device in the status snapshot, with and without the table that holds it."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from cloudwatcher.config import LocalTarget, Settings
from cloudwatcher.daemon.ops.status import collect_status


def settings(tmp_path: Path) -> Settings:
    return Settings(
        state_dir=tmp_path / "state",
        watch_root=tmp_path / "inbox",
        targets=[LocalTarget(name="local", provider="local", root=tmp_path / "mirror")],
    )


async def test_status_shows_skipped_files_per_device_even_for_a_device_with_nothing_else(
    db: asyncpg.Connection, tmp_path: Path
) -> None:
    await db.execute("INSERT INTO device_skipped_files (device_id, skipped) VALUES ('van-7', 2)")
    snapshot = await collect_status(db, settings(tmp_path))
    assert [(d["device_id"], d["files"], d["skipped"]) for d in snapshot["devices"]] == [("van-7", 0, 2)]


async def test_status_works_on_a_database_not_yet_migrated_to_hold_skip_counts(
    db: asyncpg.Connection, tmp_path: Path
) -> None:
    transaction = db.transaction()
    await transaction.start()
    try:  # the table dropped only inside this transaction, rolled back afterwards
        await db.execute("DROP TABLE device_skipped_files")
        await db.execute(
            "INSERT INTO device_connections (device_id, connected_at, last_seen_at) VALUES ('truck-1', now(), now())"
        )
        snapshot = await collect_status(db, settings(tmp_path))
        assert [(d["device_id"], d["skipped"]) for d in snapshot["devices"]] == [("truck-1", 0)]
    finally:
        await transaction.rollback()
