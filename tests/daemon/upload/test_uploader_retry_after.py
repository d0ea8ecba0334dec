"""The uploader's quick retries wait at least the server's ``Retry-After`` on every provider.

Each test throttles one upload request on a loopback emulator with ``Retry-After: 1`` and runs
the real uploader (real PostgreSQL ledger, real SDK) until the row is synced; the emulator's own
record of when requests arrived then shows how long the uploader waited before repeating.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from cloudwatcher.config import S3Target
from cloudwatcher.config.settings import RetrySettings
from cloudwatcher.daemon.health import DatabaseHealth
from cloudwatcher.daemon.ledger.store import FileVersion, Ledger
from cloudwatcher.daemon.retry import server_retry_after
from cloudwatcher.daemon.upload.worker import TargetUploader
from cloudwatcher.layout import classify
from cloudwatcher.providers import PermanentError, Provider, TransientError
from cloudwatcher.providers.google_drive import GoogleDriveProvider
from cloudwatcher.providers.s3 import S3Provider
from cloudwatcher.providers.sharepoint import SharePointProvider
from tests.providers.harness_gdrive import drive_target
from tests.providers.harness_s3 import slow_down
from tests.providers.harness_sharepoint import target_for
from tests.support.emulators.drive import DriveEmulator
from tests.support.emulators.fixtures import s3_settings
from tests.support.emulators.graph import GraphEmulator
from tests.support.emulators.s3 import dummy_session, fresh_bucket
from tests.support.rows import one_row

RETRY_AFTER = 1  # seconds; at most the uploader's quick-retry ceiling, so it is retried in-attempt


async def upload_one(pool: asyncpg.Pool, tmp_path: Path, provider: Provider, provider_key: str) -> str:
    """Record one small file, run the uploader until its row settles; the row's final status."""
    watch_root = tmp_path / "inbox"
    local_path = "dev1/requests/throttled.dat"
    content = b"throttled once\n" * 64
    (watch_root / local_path).parent.mkdir(parents=True)
    (watch_root / local_path).write_bytes(content)
    dropped = classify(local_path)
    assert dropped is not None
    version = FileVersion(
        local_path,
        dropped.device_id,
        dropped.kind,
        hashlib.sha256(content).hexdigest(),
        len(content),
        (watch_root / local_path).stat().st_mtime_ns,
    )
    ledger = Ledger(pool)
    await ledger.record([(provider.name, provider_key, version)])
    uploader = TargetUploader(
        name=provider.name,
        provider=provider,
        provider_tag=provider_key,
        ledger=ledger,
        health=DatabaseHealth(),
        retry=RetrySettings(),
        watch_root=watch_root,
        concurrency=1,
        instance_id=None,
    )
    stopping = asyncio.Event()
    task = asyncio.create_task(uploader.run(stopping))
    try:
        while True:
            status = await pool.fetchval("SELECT sync_status FROM cloud_file_refs")
            if status in ("synced", "failed"):
                return str(status)
            assert not task.done(), "the uploader stopped early"
            await asyncio.sleep(0.05)
    finally:
        stopping.set()
        await asyncio.wait_for(task, 60)
        await provider.close()


async def test_sharepoint_throttled_upload_is_repeated_no_sooner_than_retry_after(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    with GraphEmulator(tmp_path) as graph:
        provider = SharePointProvider(target_for(graph), concurrency=1)
        graph.fail_next(429, "tooManyRequests", retry_after=RETRY_AFTER, where="any")
        assert await upload_one(pool, tmp_path, provider, "sharepoint") == "synced"
        log = [entry for entry in graph.requests() if "/oauth2/" not in entry.path]
    throttled = next(i for i, entry in enumerate(log) if entry.status == 429)
    repeat = log[throttled + 1]
    assert (repeat.method, repeat.path) == (log[throttled].method, log[throttled].path)
    assert repeat.at - log[throttled].at >= RETRY_AFTER


async def test_google_drive_throttled_upload_is_repeated_no_sooner_than_retry_after(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    with DriveEmulator(tmp_path) as drive:
        provider = GoogleDriveProvider(drive_target(drive), concurrency=1)
        drive.fail_next(429, "rateLimitExceeded", "Rate Limit Exceeded", retry_after=RETRY_AFTER)
        assert await upload_one(pool, tmp_path, provider, "google-drive") == "synced"
        log = [record for record in drive.log() if record.path != "/token"]
    throttled = next(i for i, record in enumerate(log) if record.status == 429)
    repeat = log[throttled + 1]
    assert (repeat.method, repeat.path) == (log[throttled].method, log[throttled].path)
    assert repeat.time - log[throttled].time >= RETRY_AFTER


@contextlib.contextmanager
def throttle_first_put(provider: S3Provider, sent: list[tuple[str, float, bool]]) -> Iterator[None]:
    """moto cannot throttle: the first PutObject is answered 503 SlowDown with ``Retry-After: 1``
    in botocore's last hook before the wire, which also notes when each request went out."""
    lock = threading.Lock()

    def before_send(request: Any, **_: Any) -> Any:
        with lock:
            throttle = not any(operation == "PutObject" for operation, _, _ in sent)
            sent.append(("PutObject", time.time(), throttle))
        if throttle:
            return slow_down(retry_after=str(RETRY_AFTER))
        return None

    provider.client.meta.events.register("before-send.s3.PutObject", before_send)
    try:
        yield
    finally:
        provider.client.meta.events.unregister("before-send.s3.PutObject", before_send)


async def test_s3_throttled_upload_is_repeated_no_sooner_than_retry_after(pool: asyncpg.Pool, tmp_path: Path) -> None:
    with fresh_bucket() as bucket:
        provider = S3Provider(S3Target.model_validate(s3_settings(bucket)), session=dummy_session(), concurrency=1)
        sent: list[tuple[str, float, bool]] = []
        with throttle_first_put(provider, sent):
            assert await upload_one(pool, tmp_path, provider, "s3") == "synced"
    assert [throttled for _, _, throttled in sent] == [True, False]
    assert sent[1][1] - sent[0][1] >= RETRY_AFTER


async def test_a_retry_after_too_long_for_a_quick_retry_schedules_the_row_no_sooner(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    with GraphEmulator(tmp_path) as graph:
        provider = SharePointProvider(target_for(graph), concurrency=1)
        graph.fail_next(429, "tooManyRequests", retry_after=120, where="any")
        before = datetime.now(UTC)
        assert await upload_one(pool, tmp_path, provider, "sharepoint") == "failed"
        throttled = [entry for entry in graph.requests() if entry.status == 429]
        assert len(throttled) == 1  # not repeated within the attempt
    row = await one_row(pool, "SELECT next_attempt_at, attempts FROM cloud_file_refs")
    assert row["attempts"] == 1
    # The default backoff after one failure is 2.5-5 s; the server asked for two minutes.
    assert row["next_attempt_at"] >= before + timedelta(seconds=120)


@pytest.mark.parametrize("retry_after", [None, 0.0, 1.5])
def test_the_server_hint_is_the_floor_of_every_wait(retry_after: float | None) -> None:
    assert server_retry_after(TransientError("throttled", retry_after=retry_after)) == (retry_after or 0.0)
    assert server_retry_after(PermanentError("refused")) == 0.0
    assert server_retry_after(None) == 0.0
