"""The local provider's own behaviour, beyond the conformance suite: ``bandwidth_limit``."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

from cloudwatcher.config import LocalTarget
from cloudwatcher.providers.local.provider import LocalProvider
from tests.support.upload_jobs import make_job, no_state


def paced_provider(tmp_path: Path, limit: str) -> LocalProvider:
    return LocalProvider(
        LocalTarget.model_validate(
            {"name": "local", "provider": "local", "root": tmp_path / "mirror", "bandwidth_limit": limit}
        )
    )


async def test_bandwidth_limit_paces_the_bytes_written_to_the_mirror(tmp_path: Path) -> None:
    provider = paced_provider(tmp_path, "1M")
    data = os.urandom(1024 * 1024)
    started = time.monotonic()
    for n in range(3):
        await provider.upload(make_job(tmp_path, f"dev1/requests/paced-{n}.bin", data), no_state)
    elapsed = time.monotonic() - started
    # A one-second burst, then 1 MiB per second: 3 MiB cannot take less than two seconds.
    assert elapsed >= 1.9
    assert (tmp_path / "mirror/dev1/requests/paced-2.bin").read_bytes() == data


def test_bandwidth_limit_paces_the_daemons_batches_of_small_files_too(tmp_path: Path) -> None:
    provider = paced_provider(tmp_path, "64K")
    data = os.urandom(16 * 1024)
    started = time.monotonic()
    for n in range(8):  # 128 KiB: one 64 KiB burst, then a second for the other 64 KiB
        provider.upload_blocking(make_job(tmp_path, f"dev1/requests/small-{n}.dat", data))
    assert time.monotonic() - started >= 0.9


def test_an_unpaced_local_target_has_no_bandwidth_limit(tmp_path: Path) -> None:
    provider = LocalProvider(LocalTarget(name="local", provider="local", root=tmp_path / "mirror"))
    assert not provider._bandwidth.limited


async def test_close_releases_an_upload_waiting_for_bandwidth(tmp_path: Path) -> None:
    provider = paced_provider(tmp_path, "1K")
    job = make_job(tmp_path, "dev1/requests/slow.bin", os.urandom(64 * 1024))  # about a minute at 1 KiB/s
    finished = threading.Event()

    def upload() -> None:
        provider.upload_blocking(job)
        finished.set()

    thread = threading.Thread(target=upload)
    thread.start()
    assert not await asyncio.to_thread(finished.wait, 0.3)  # it is really waiting
    await provider.close()
    assert await asyncio.to_thread(finished.wait, 10)
    thread.join(10)
    assert (tmp_path / "mirror/dev1/requests/slow.bin").exists()
