"""Quotas against the Drive emulator, through the daemon subprocess (docs/ledger-and-requests.md, Statuses).

A daily upload cap parks the whole target until the cap can have reset, spending no attempts;
a full storage quota gives up at once and marks the target full until ``cloudwatcher retry``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from cloudwatcher.daemon.upload.target_state import target_states
from tests.support.daemon_process import DaemonProcess
from tests.support.emulators.drive import DriveEmulator

pytestmark = pytest.mark.slow
Daemon = Callable[..., DaemonProcess]


@pytest.fixture
def drive(tmp_path: Path) -> Iterator[DriveEmulator]:
    with DriveEmulator(tmp_path) as emulator:
        yield emulator


def drive_target(emulator: DriveEmulator) -> dict[str, Any]:
    return {
        "name": "gdrive",
        "provider": "google-drive",
        "service_account_file": str(emulator.key_file),
        "folder_id": emulator.root_folder_id,
        "api_endpoint": emulator.url,
        "requests_per_second": 1000,
    }


def uploads(emulator: DriveEmulator) -> int:
    return len([record for record in emulator.log(path_prefix="/upload/") if record.method in ("POST", "PATCH")])


@pytest.mark.parametrize("shape", ["uploadLimitExceeded", "userRateLimitExceeded"])
async def test_a_daily_upload_cap_parks_the_target_without_spending_attempts(
    daemon: Daemon, drive: DriveEmulator, shape: str
) -> None:
    # Drive answers the cap with either reason; the second is told from the per-minute limit
    # by its message.
    if shape == "uploadLimitExceeded":
        drive.daily_upload_cap()
    else:
        drive.daily_upload_cap_as_rate_limit()
    d = daemon(targets=[drive_target(drive)]).start()
    d.drop("truck-1/requests/first.bin", b"hits the cap")

    async def parked() -> bool:
        rows = await d.query("SELECT sync_status FROM cloud_file_refs")
        return [row["sync_status"] for row in rows] == ["failed"]

    await d.wait_for(parked, 30, "the capped row to be parked")
    (row,) = await d.query("SELECT attempts, next_attempt_at, last_error FROM cloud_file_refs")
    assert row["attempts"] == 0 and "daily upload limit" in row["last_error"]
    connection = await asyncpg.connect(d.database_url)
    try:
        state = (await target_states(connection))["gdrive"]
        assert state["state"] == "parked" and state["until"] is not None
        assert row["next_attempt_at"].isoformat() == state["until"]
        # While parked, nothing else of the target is even tried.
        tried = uploads(drive)
        d.drop("truck-1/requests/second.bin", b"waits for the reset")
        await d.wait_for(lambda: _rows(d, 2), 30, "the second file to be recorded")
        await asyncio.sleep(2.0)
        assert uploads(drive) == tried
        assert {r["sync_status"] for r in await d.query("SELECT sync_status FROM cloud_file_refs")} == {
            "failed",
            "pending",
        }
        # The cap has reset (time travel: the parking ends now).
        await connection.execute("UPDATE target_states SET until = now()")
        await connection.execute("UPDATE cloud_file_refs SET next_attempt_at = now() WHERE sync_status = 'failed'")
        await d.wait_synced(2, timeout=30)
        attempts = sorted(r["attempts"] for r in await d.query("SELECT attempts FROM cloud_file_refs"))
        assert attempts == [1, 1]  # the parked attempt was not counted
        assert (await target_states(connection))["gdrive"]["state"] == "ok"
        assert await connection.fetchval("SELECT count(*) FROM notification_events") == 0
    finally:
        await connection.close()
    assert d.stop() == 0


async def _rows(d: DaemonProcess, count: int) -> bool:
    return len(await d.query("SELECT id FROM cloud_file_refs")) == count


async def test_a_full_drive_gives_up_at_once_and_retry_resumes(daemon: Daemon, drive: DriveEmulator) -> None:
    drive.storage_quota_exceeded()
    d = daemon(targets=[drive_target(drive)]).start()
    d.drop("truck-1/requests/big.bin", b"no room")

    async def gave_up() -> bool:
        rows = await d.query("SELECT sync_status, next_attempt_at FROM cloud_file_refs")
        return len(rows) == 1 and rows[0]["sync_status"] == "failed" and rows[0]["next_attempt_at"] is None

    await d.wait_for(gave_up, 30, "the row to give up")
    (row,) = await d.query("SELECT attempts, last_error FROM cloud_file_refs")
    assert row["attempts"] == 1 and "storageQuotaExceeded" in row["last_error"]
    connection = await asyncpg.connect(d.database_url)
    try:
        assert (await target_states(connection))["gdrive"]["state"] == "full"
        assert "re-queued 1" in d.command("retry", "--all").stdout
        assert (await target_states(connection))["gdrive"]["state"] == "ok"  # resumed
        await d.wait_synced(1, timeout=30)
        events = [
            r["event"] for r in await connection.fetch("SELECT event FROM notification_events ORDER BY created_at")
        ]
        assert events == ["target.full", "file.gave_up", "target.recovered"] or events == [
            "file.gave_up",
            "target.full",
            "target.recovered",
        ]
    finally:
        await connection.close()
    assert d.stop() == 0
