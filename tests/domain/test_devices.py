"""Device sessions opened and extended by file activity, closed after silence."""

from __future__ import annotations

import datetime as dt

import asyncpg

from cloudwatcher.domain import close_idle_device_sessions, note_device_activity
from tests.support.domain import Devices, email, envelope
from tests.support.rows import one_row

NOW = dt.datetime.now(dt.UTC)


async def test_activity_opens_one_session_per_device_and_moves_last_seen(db: asyncpg.Connection) -> None:
    await note_device_activity(db, {"truck-1": NOW - dt.timedelta(minutes=5), "truck-2": NOW})
    await note_device_activity(db, {"truck-1": NOW})
    await note_device_activity(db, {"truck-1": NOW - dt.timedelta(minutes=9)})  # late event: never moves back
    rows = await db.fetch("SELECT * FROM device_connections ORDER BY device_id")
    assert [r["device_id"] for r in rows] == ["truck-1", "truck-2"]
    assert rows[0]["connection_type"] == "file-drop"
    assert rows[0]["connected_at"] == NOW - dt.timedelta(minutes=5)
    assert rows[0]["last_seen_at"] == NOW
    assert rows[0]["disconnected_at"] is None


async def test_silence_closes_the_session_at_the_last_file(db: asyncpg.Connection) -> None:
    start = NOW - dt.timedelta(hours=2)
    await note_device_activity(db, {"truck-1": start})
    await note_device_activity(db, {"truck-1": start + dt.timedelta(minutes=10)})
    await note_device_activity(db, {"truck-2": NOW})
    assert await close_idle_device_sessions(db, 900) == 1
    closed = await one_row(db, "SELECT * FROM device_connections WHERE device_id = 'truck-1'")
    assert closed["disconnected_at"] == start + dt.timedelta(minutes=10)
    assert closed["session_duration_seconds"] == 600
    assert await close_idle_device_sessions(db, 900) == 0
    await note_device_activity(db, {"truck-1": NOW})  # back again: a new session
    assert await db.fetchval("SELECT count(*) FROM device_connections WHERE device_id = 'truck-1'") == 2


async def test_a_file_after_long_silence_opens_a_new_session_before_the_closing_job_runs(
    db: asyncpg.Connection,
) -> None:
    await note_device_activity(db, {"truck-1": NOW - dt.timedelta(hours=3)}, idle_seconds=900)
    await note_device_activity(db, {"truck-1": NOW}, idle_seconds=900)
    rows = await db.fetch("SELECT connected_at, disconnected_at FROM device_connections ORDER BY connected_at")
    assert len(rows) == 2 and rows[0]["disconnected_at"] is not None and rows[1]["disconnected_at"] is None


async def test_the_envelopes_user_is_attached_to_the_open_session(devices: Devices, db: asyncpg.Connection) -> None:
    await note_device_activity(db, {"truck-n101": NOW})
    await devices.send("truck-n101", "a.json", envelope("get_parts", "tom.hughes", {"location": "Truck N-101"}))
    user = await db.fetchval(
        "SELECT u.email FROM device_connections c JOIN users u ON u.id = c.user_id WHERE c.device_id = 'truck-n101'"
    )
    assert user == email("tom.hughes")
    # A later session starts with the device's latest known user.
    await close_idle_device_sessions(db, 0)
    await note_device_activity(db, {"truck-n101": NOW + dt.timedelta(hours=1)})
    users = await db.fetch("SELECT user_id FROM device_connections WHERE device_id = 'truck-n101'")
    assert len(users) == 2 and all(r["user_id"] is not None for r in users)
