"""A pause reaches uploads that were claimed before it: queued rows go back to pending, untouched."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import cast

import asyncpg

from cloudwatcher.config import LocalTarget
from cloudwatcher.daemon.upload.pauses import pause_target
from cloudwatcher.providers.base import SaveState, UploadJob, UploadResult
from cloudwatcher.providers.local.provider import LocalProvider
from tests.support.uploader_harness import Harness, drop


class GatedProvider(LocalProvider):
    """The local provider with network-like uploads (one task per row, no batches), each
    waiting at a gate the test opens, so that rows stay queued behind the first one."""

    def __init__(self, root: Path) -> None:
        super().__init__(LocalTarget(name="mirror", provider="local", root=root))
        self.gate = asyncio.Event()
        self.started: list[str] = []

    async def upload(self, job: UploadJob, save_state: SaveState) -> UploadResult:
        self.started.append(job.remote_path)
        await self.gate.wait()
        return await asyncio.to_thread(super().upload_blocking, job)

    upload_blocking = None  # type: ignore[assignment]  # not a BlockingUploads: rows go one task each


async def statuses(pool: asyncpg.Pool) -> dict[str, str]:
    rows = await pool.fetch("SELECT local_path, sync_status FROM cloud_file_refs")
    return {row["local_path"]: row["sync_status"] for row in rows}


async def test_rows_queued_behind_a_running_upload_are_given_back_when_the_target_is_paused(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    provider = GatedProvider(tmp_path / "mirror")
    harness = Harness(pool, tmp_path, provider=provider, concurrency=1)
    paths = [f"truck-1/requests/{name}.bin" for name in ("a", "b", "c")]
    await harness.record([drop(harness.watch_root, path, path.encode()) for path in paths])
    stopping = asyncio.Event()
    task = asyncio.create_task(harness.uploader.run(stopping))
    try:
        deadline = time.monotonic() + 30
        while not provider.started:
            assert time.monotonic() < deadline, "no upload started"
            await asyncio.sleep(0.05)
        first = provider.started[0]
        async with pool.acquire() as connection:
            # A pool's connection proxies every method of the Connection that pause_target takes.
            assert await pause_target(cast(asyncpg.Connection, connection), "mirror", "test@here")
        queued = [path for path in paths if path != first]
        deadline = time.monotonic() + 60  # the uploader looks at the pause with its lease renewal
        while not all(status == "pending" for path, status in (await statuses(pool)).items() if path in queued):
            assert time.monotonic() < deadline, await statuses(pool)
            await asyncio.sleep(0.1)
        provider.gate.set()
        deadline = time.monotonic() + 30
        while (await statuses(pool))[first] != "synced":
            assert time.monotonic() < deadline, await statuses(pool)
            await asyncio.sleep(0.05)
    finally:
        stopping.set()
        await task
    assert provider.started == [first]  # the queued rows never reached the provider
    final = await statuses(pool)
    assert all(final[path] == "pending" for path in queued)
    assert not any((harness.mirror / path).exists() for path in queued)
