"""Group commit on the local target: uploads land without waiting; one flush makes a batch durable."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from pathlib import Path

import pytest

from cloudwatcher.config import LocalTarget
from cloudwatcher.providers import UploadJob
from cloudwatcher.providers.local import provider as local
from cloudwatcher.providers.local.syncfs import SYNCFS_AVAILABLE, syncfs
from tests.support.upload_jobs import no_state


def job(tmp_path: Path, name: str) -> UploadJob:
    source = tmp_path / "src" / name
    source.parent.mkdir(parents=True, exist_ok=True)
    data = os.urandom(100)
    source.write_bytes(data)
    return UploadJob(source, f"dev/requests/{name}", 100, hashlib.sha256(data).hexdigest(), 0)


@pytest.mark.skipif(not SYNCFS_AVAILABLE, reason="syncfs(2) is Linux-only; the provider then fsyncs each file")
async def test_one_flush_per_filesystem_makes_a_whole_batch_durable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(local, "syncfs", lambda path: calls.append(path))
    fsyncs: list[int] = []
    monkeypatch.setattr(local.os, "fsync", lambda fd: fsyncs.append(fd))
    provider = local.LocalProvider(LocalTarget(name="m", provider="local", root=tmp_path / "mirror"))
    for index in range(25):
        await provider.upload(job(tmp_path, f"f{index}.bin"), no_state)
    assert fsyncs == [] and calls == []  # nothing waited per file
    await provider.flush()
    assert len(calls) == 1  # one filesystem, one flush for 25 files
    await provider.flush()
    assert len(calls) == 1  # nothing written since: nothing to flush


@pytest.mark.skipif(not SYNCFS_AVAILABLE, reason="syncfs(2) is Linux-only; the provider then fsyncs each file")
async def test_a_flush_returns_only_once_an_earlier_flush_has_made_its_files_durable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The uploader runs two write-backs at once. A file written before the first flush took
    # its filesystem is made durable by that flush's syncfs; the second flush, finding nothing
    # left to sync, must still not return (and let its rows be marked synced) before then.
    started, release = threading.Event(), threading.Event()
    calls: list[Path] = []

    def slow_syncfs(path: Path) -> None:
        calls.append(path)
        started.set()
        assert release.wait(10)

    monkeypatch.setattr(local, "syncfs", slow_syncfs)
    provider = local.LocalProvider(LocalTarget(name="m", provider="local", root=tmp_path / "mirror"))
    await provider.upload(job(tmp_path, "a.bin"), no_state)
    first = asyncio.create_task(provider.flush())
    assert await asyncio.to_thread(started.wait, 10)
    second = asyncio.create_task(provider.flush())
    await asyncio.sleep(0.2)
    assert not second.done() and not first.done()
    release.set()
    await asyncio.wait_for(asyncio.gather(first, second), 10)
    assert len(calls) == 1  # the second had nothing of its own to sync


@pytest.mark.skipif(not SYNCFS_AVAILABLE, reason="syncfs(2) is Linux-only; the provider then fsyncs each file")
def test_syncfs_really_runs_and_reports_errors(tmp_path: Path) -> None:
    syncfs(tmp_path)
    with pytest.raises(OSError):
        syncfs(tmp_path / "missing")
