"""A database restart while the daemon runs is ridden out (CONTRACT.md section 5)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from cloudwatcher.database import EmbeddedPostgres
from tests.daemon_process import DaemonProcess

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
