"""Issue 5's figures: each provider against its emulator, through the real daemon subprocess.

For every provider (local, SharePoint on the Graph emulator, Google Drive on the Drive
emulator, S3 on moto's server) one daemon is started with that target alone, so that the
client runs in the daemon's process and the emulator in this one, as against a real service:

1. one big file (``BENCH_BIG_MB``, default 1024 MiB) is dropped; its upload throughput is
   the file size over the ledger's ``created_at`` → ``uploaded_at`` (claim, upload, verify),
   and the daemon's resident memory is sampled every 50 ms meanwhile (goal: peak < 150 MB,
   < 110 MB with a SharePoint target, issue 20);
2. then ``BENCH_SMALL_FILES`` (default 2,000) small files of ``BENCH_SMALL_BYTES`` (2 KiB)
   are dropped at once; files/s is the count over drop → last row synced.

Google Drive's default of 10 requests per second would measure the pacing, not the uploader,
so the Drive target is configured without it (as the tests do). The emulators are strict,
in-memory Python servers sharing this process's GIL: the figures are a floor for the daemon
and a regression yardstick, not a forecast of the real services' speed.
``BENCH_PROVIDERS`` (comma-separated: local,sharepoint,google-drive,s3) picks a subset.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks.common import BenchDaemon, workspace
from tests.support.emulators.drive import DriveEmulator
from tests.support.emulators.fixtures import google_drive_settings, s3_settings, sharepoint_settings
from tests.support.emulators.graph import GraphEmulator
from tests.support.emulators.s3 import AWS_TEST_ENVIRONMENT, fresh_bucket

MIB = 1024 * 1024
PROVIDERS = ("local", "sharepoint", "google-drive", "s3")
RSS_GOAL_MB = 150
#: Tighter goals per provider (issue 20: the Graph SDK's models once cost SharePoint 32 MB).
RSS_GOALS_MB = {"sharepoint": 110}


@contextlib.contextmanager
def target_for(provider: str, root: Path) -> Iterator[dict[str, Any]]:
    """The target settings for ``provider``, its emulator running for as long as the block."""
    with emulated_target(provider, root) as (settings, _):
        yield settings


@contextlib.contextmanager
def emulated_target(provider: str, root: Path) -> Iterator[tuple[dict[str, Any], Any]]:
    """Like :func:`target_for`, with what serves the target: the ``GraphEmulator`` or
    ``DriveEmulator`` (whose request logs a benchmark can read), the S3 bucket's name on the
    process's moto server, or None for a local target."""
    if provider == "local":
        yield {"name": "local", "provider": "local", "root": str(root / "mirror")}, None
    elif provider == "sharepoint":
        (root / "graph").mkdir()
        with GraphEmulator(root / "graph") as graph:
            yield sharepoint_settings(graph), graph
    elif provider == "google-drive":
        (root / "drive").mkdir()
        with DriveEmulator(root / "drive") as drive:
            yield google_drive_settings(drive), drive
    elif provider == "s3":
        os.environ.update(AWS_TEST_ENVIRONMENT)  # the daemon finds them through the AWS chain
        with fresh_bucket() as bucket:
            yield s3_settings(bucket), bucket
    else:
        raise ValueError(f"unknown provider {provider!r}; choose from {', '.join(PROVIDERS)}")


def write_random_file(path: Path, size: int) -> None:
    """``size`` incompressible bytes, written in 1 MiB blocks, with an mtime in the past."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as writer:
        remaining = size
        while remaining:
            block = os.urandom(min(MIB, remaining))
            writer.write(block)
            remaining -= len(block)
    past = time.time() - 60
    os.utime(path, (past, past))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def synced_count(connection: asyncpg.Connection) -> int:
    count: int = await connection.fetchval("SELECT count(*) FROM cloud_file_refs WHERE sync_status = 'synced'")
    return count


async def wait_synced(
    daemon: BenchDaemon, connection: asyncpg.Connection, count: int, limit: float, samples: list[float] | None = None
) -> None:
    """Poll until ``count`` rows are synced, sampling the daemon's RSS into ``samples``."""
    assert daemon.process is not None
    deadline = time.monotonic() + limit
    while await synced_count(connection) < count:
        if daemon.process.poll() is not None:
            raise RuntimeError((daemon.root / "daemon.log").read_text(errors="replace")[-3000:])
        if time.monotonic() > deadline:
            failed = await connection.fetch("SELECT local_path, last_error FROM cloud_file_refs WHERE last_error<>''")
            raise TimeoutError(f"{count} rows not synced in {limit:.0f} s; errors: {[dict(r) for r in failed[:3]]}")
        if samples is not None:
            samples.append(rss_mb(daemon.process.pid))
        await asyncio.sleep(0.05)


async def bench_provider(provider: str, big_bytes: int, small_files: int, small_bytes: int) -> list[str]:
    root = workspace(f"cw-bench-{provider}-")
    try:
        with target_for(provider, root) as target:
            staging = root / "staging"
            write_random_file(staging / "big" / "requests" / "big.bin", big_bytes)
            for index in range(small_files):
                path = staging / "small" / f"device-{index % 20:02d}" / "requests" / f"r{index}.bin"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(os.urandom(small_bytes))
                os.utime(path, (time.time() - 60, time.time() - 60))
            daemon = BenchDaemon(root, targets=json.dumps([target]))
            daemon.start()
            try:
                assert daemon.process is not None
                connection = await asyncpg.connect(daemon.url)
                try:
                    daemon.inbox.mkdir(parents=True, exist_ok=True)
                    samples = [rss_mb(daemon.process.pid)]
                    dropped = time.monotonic()
                    os.rename(staging / "big", daemon.inbox / "big")
                    await wait_synced(daemon, connection, 1, limit=3600, samples=samples)
                    big_wall = time.monotonic() - dropped
                    upload_seconds = await connection.fetchval(
                        "SELECT extract(epoch FROM uploaded_at - created_at) FROM cloud_file_refs"
                    )
                    dropped = time.monotonic()
                    for device in sorted((staging / "small").iterdir()):
                        os.rename(device, daemon.inbox / device.name)
                    await wait_synced(daemon, connection, 1 + small_files, limit=3600)
                    small_wall = time.monotonic() - dropped
                finally:
                    await connection.close()
            finally:
                daemon.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    megabytes = big_bytes / MIB
    peak = max(samples)
    goal = RSS_GOALS_MB.get(provider, RSS_GOAL_MB)
    verdict = "ok" if peak < goal else f"over the {goal} MB goal"
    return [
        f"{provider}: {megabytes:.0f} MiB file at {megabytes / float(upload_seconds):.1f} MiB/s "
        f"(upload+verify {float(upload_seconds):.1f} s, drop to synced {big_wall:.1f} s); "
        f"daemon peak RSS during it {peak:.0f} MB ({verdict}; {samples[0]:.0f} MB idle before the drop)",
        f"{provider}: {small_files} files of {small_bytes} B at {small_files / small_wall:.0f} files/s "
        f"(drop to last synced {small_wall:.1f} s)",
    ]


async def run() -> list[str]:
    big_bytes = int(float(os.environ.get("BENCH_BIG_MB", "1024")) * MIB)
    small_files = int(os.environ.get("BENCH_SMALL_FILES", "2000"))
    small_bytes = int(os.environ.get("BENCH_SMALL_BYTES", "2048"))
    selected = [name.strip() for name in os.environ.get("BENCH_PROVIDERS", ",".join(PROVIDERS)).split(",") if name]
    lines = [
        f"== providers: one {big_bytes / MIB:.0f} MiB file, then {small_files} files of {small_bytes} B, "
        "each provider alone in a daemon against its emulator"
    ]
    for provider in selected:
        lines.extend(await bench_provider(provider, big_bytes, small_files, small_bytes))
    return lines
