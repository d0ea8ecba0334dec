"""The uploader of one local target against the real test PostgreSQL, and files dropped for it.

``Harness`` wires a ``TargetUploader`` to a mirror folder through the local provider and runs it
until the rows it was given settle; ``drop`` writes a file and describes it as the recorder would.
The uploader, pause and hand-off tests share them.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

import asyncpg

from cloudwatcher.config import LocalTarget
from cloudwatcher.config.settings import RetrySettings
from cloudwatcher.daemon.health import DatabaseHealth
from cloudwatcher.daemon.ledger.store import ClaimedRow, FileVersion, Ledger
from cloudwatcher.daemon.upload.worker import TargetUploader
from cloudwatcher.layout import classify
from cloudwatcher.providers import Provider, UploadResult
from cloudwatcher.providers.local.provider import LocalProvider


def drop(root: Path, local_path: str, content: bytes) -> FileVersion:
    """Write a file under the watch root and describe it as the recorder would."""
    path = root / local_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    dropped = classify(local_path)
    assert dropped is not None
    return FileVersion(
        local_path,
        dropped.device_id,
        dropped.kind,
        hashlib.sha256(content).hexdigest(),
        len(content),
        path.stat().st_mtime_ns,
    )


class Harness:
    def __init__(
        self, pool: asyncpg.Pool, tmp_path: Path, *, provider: Provider | None = None, concurrency: int = 4
    ) -> None:
        """``provider`` defaults to the local provider writing into ``tmp_path / "mirror"``."""
        self.watch_root = tmp_path / "inbox"
        self.mirror = tmp_path / "mirror"
        self.ledger = Ledger(pool)
        self.provider = provider or LocalProvider(LocalTarget(name="mirror", provider="local", root=self.mirror))
        self.changed: list[str] = []
        self.results: list[tuple[str, bool]] = []

        def on_result(row: ClaimedRow, result: UploadResult | None, reason: str | None, seconds: float) -> None:
            self.results.append((row.local_path, result is not None))

        self.uploader = TargetUploader(
            name="mirror",
            provider=self.provider,
            provider_tag="local",
            ledger=self.ledger,
            health=DatabaseHealth(),
            retry=RetrySettings(),
            watch_root=self.watch_root,
            concurrency=concurrency,
            instance_id=None,
            on_changed_file=self.changed.append,
            on_result=on_result,
        )

    async def record(self, versions: list[FileVersion]) -> None:
        await self.ledger.record([("mirror", "local", version) for version in versions])

    async def run_until_settled(self, rows: int) -> dict[str, list[asyncpg.Record]]:
        """Run the uploader until ``rows`` rows are synced or failed; the rows by local path."""
        stopping = asyncio.Event()
        task = asyncio.create_task(self.uploader.run(stopping))
        deadline = time.monotonic() + 60
        try:
            while True:
                settled = await self.ledger.pool.fetchval(
                    "SELECT count(*) FROM cloud_file_refs WHERE sync_status IN ('synced', 'failed')"
                )
                if settled >= rows:
                    break
                assert time.monotonic() < deadline, f"only {settled} of {rows} rows settled"
                await asyncio.sleep(0.05)
        finally:
            stopping.set()
            await task
        by_path: dict[str, list[asyncpg.Record]] = {}
        for row in await self.ledger.pool.fetch("SELECT * FROM cloud_file_refs ORDER BY created_at, file_mtime_ns"):
            by_path.setdefault(row["local_path"], []).append(row)
        return by_path
