"""A database restart while the daemon runs is ridden out (docs/operations.md, Troubleshooting pointers)."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import asyncpg
import pytest

from cloudwatcher.database import EmbeddedPostgres
from tests.support.daemon_process import DaemonProcess

pytestmark = pytest.mark.slow


async def test_files_dropped_during_a_database_outage_are_synced_after_it(
    private_server: EmbeddedPostgres, tmp_path: Path
) -> None:
    d = DaemonProcess(tmp_path, private_server.url())
    d.start()
    try:
        await d.wait_started()
        d.drop("truck-1/requests/before.txt", b"before the outage")
        await d.wait_synced(1)
        private_server.stop("fast")
        for index in range(5):
            d.drop(f"truck-1/requests/during-{index}.txt", f"during {index}".encode())
        await asyncio.sleep(3)
        assert d.process is not None and d.process.poll() is None, "the daemon must not exit on a short outage"
        private_server.ensure_running()
        started = time.monotonic()
        await d.wait_synced(6, timeout=60)
        assert time.monotonic() - started < 60
        for index in range(5):
            assert (d.mirror / f"truck-1/requests/during-{index}.txt").read_text() == f"during {index}"
        assert "database unreachable" in d.log()
        assert d.stop() == 0
    finally:
        if d.process is not None:
            d.kill()


async def test_the_daemon_rides_out_repeated_shutdowns_at_random_moments_of_a_burst(
    private_server: EmbeddedPostgres, tmp_path: Path
) -> None:
    """A connection that dies under any component (even in asyncpg's release/reset) is an outage, never an exit.

    Fast and immediate shutdowns land at random moments of a burst of attachments and envelopes,
    so the recorder, the ingestion, the uploader's write-backs and the jobs each get caught mid-call.
    """
    chooser = random.Random(18)
    d = DaemonProcess(tmp_path, private_server.url())
    d.start()
    dropped: list[str] = []
    try:
        await d.wait_started()
        for round_number in range(20):
            for index in range(25):
                name = f"truck-{index % 3}/requests/r{round_number}-{index}"
                if index % 5 == 0:  # a request envelope: ingestion and a response
                    d.drop(f"{name}.json", b'{"not": "an envelope"}')
                    dropped.append(f"{name}.json")
                else:
                    d.drop(f"{name}.bin", bytes([round_number, index]) * 64)
                    dropped.append(f"{name}.bin")
            await asyncio.sleep(chooser.uniform(0.0, 0.6))
            private_server.stop(chooser.choice(["fast", "immediate"]))
            await asyncio.sleep(chooser.uniform(0.0, 0.3))
            assert d.process is not None and d.process.poll() is None, d.log()[-4000:]
            private_server.ensure_running()

        async def every_drop_synced() -> bool:
            try:
                rows = await d.query(
                    "SELECT local_path, sync_status FROM cloud_file_refs WHERE local_path LIKE '%/requests/%'"
                )
            except (OSError, asyncpg.PostgresError):
                return False
            synced = {row["local_path"] for row in rows if row["sync_status"] == "synced"}
            return synced == set(dropped) and len(rows) == len(dropped)

        await d.wait_for(every_drop_synced, timeout=180, what="every dropped file synced")
        assert d.stop() == 0
    finally:
        if d.process is not None:
            d.kill()
