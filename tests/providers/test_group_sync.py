"""Group commit: one syncfs serves every writer that waited, and never one that started too early."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from cloudwatcher.providers import group_sync
from cloudwatcher.providers.group_sync import SYNCFS_AVAILABLE, GroupSync


async def test_concurrent_writers_share_flushes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    flushes: list[tuple[float, float]] = []

    def slow_syncfs(path: Path) -> None:
        started = time.monotonic()
        time.sleep(0.05)
        flushes.append((started, time.monotonic()))

    monkeypatch.setattr(group_sync, "syncfs", slow_syncfs)
    group = GroupSync(tmp_path)
    first = asyncio.create_task(group.wait_durable())
    await asyncio.sleep(0.01)  # the first flush is running now
    arrived = time.monotonic()
    await asyncio.gather(first, *(group.wait_durable() for _ in range(20)))
    assert len(flushes) == 2  # 21 writers, two flushes
    assert flushes[1][0] >= arrived  # the late writers were covered by a flush that began after they came


@pytest.mark.skipif(not SYNCFS_AVAILABLE, reason="syncfs(2) is Linux-only; the provider then fsyncs each file")
def test_syncfs_really_runs_and_reports_errors(tmp_path: Path) -> None:
    group_sync.syncfs(tmp_path)
    with pytest.raises(OSError):
        group_sync.syncfs(tmp_path / "missing")
