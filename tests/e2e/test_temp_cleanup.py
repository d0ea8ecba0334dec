"""Temporary files a killed daemon left behind are removed at start-up; nothing else is touched."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cloudwatcher.config import LocalTarget
from cloudwatcher.daemon.jobs.temp_cleanup import remove_stale_temp_files
from cloudwatcher.providers.base import UploadJob
from cloudwatcher.providers.local import provider as local_provider
from tests.support.daemon_process import DaemonProcess

DEAD_PID = 4194305  # above Linux's highest possible pid_max: no process can have it


def aged(path: Path, seconds: float, data: bytes = b"partial") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))
    return path


@pytest.mark.slow
async def test_a_killed_daemons_temporary_files_are_removed_at_start_up(
    daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    d = daemon()
    gone = [
        aged(d.mirror / "truck-1/requests/.a.jpg.cloudwatcher-4194305.tmp", 3600),
        aged(d.mirror / "truck-1/requests/.b.jpg.cloudwatcher-12345.tmp", 2 * 86400),  # a day old: any pid
        aged(d.watch_root / "truck-1/responses/sub/.r.json.0123456789ab.tmp", 7200),
        aged(d.state_dir / "archive/truck-1/requests/.c.jpg.cloudwatcher-archive.tmp", 7200),
        aged(d.mirror / "truck-1/requests/.h.jpg.cloudwatcher-99999999999999999999999.tmp", 3600),  # no such pid
    ]
    outside = aged(tmp_path / "precious.txt", 7200, b"not the daemon's")
    kept = [
        aged(d.mirror / f"truck-1/requests/.d.jpg.cloudwatcher-{os.getpid()}.tmp", 3600),  # a live process's
        aged(d.mirror / f"truck-1/requests/.e.jpg.cloudwatcher-{DEAD_PID}.tmp", 10),  # too fresh to judge
        aged(d.watch_root / "truck-1/responses/.fresh.json.0123456789ab.tmp", 10),
        aged(d.watch_root / "truck-1/requests/.x.json.0123456789ab.tmp", 7200),  # the device's own folder
        aged(d.watch_root / "truck-1/responses/.not-ours.tmp", 7200),
        aged(d.mirror / "truck-1/requests/report.pdf", 7200, b"a mirrored file"),
    ]
    link = d.mirror / "truck-1/requests/.f.jpg.cloudwatcher-4194305.tmp"
    link.symlink_to(outside)
    os.utime(link, (time.time() - 7200,) * 2, follow_symlinks=False)
    odd_folder = d.mirror / "truck-1/requests/.g.jpg.cloudwatcher-4194305.tmp"
    odd_folder.mkdir()
    d.start()
    await d.wait_started()

    async def cleaned() -> bool:
        return not any(path.exists() for path in gone)

    await d.wait_for(cleaned, 60, "the stale temporary files removed")
    assert all(path.exists() for path in kept)
    assert link.is_symlink() and outside.read_bytes() == b"not the daemon's" and odd_folder.is_dir()
    assert d.stop() == 0


def test_the_reconcile_sweep_ignores_missing_and_unreadable_folders(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "truck-1").write_bytes(b"a file where a device folder would be")
    (tmp_path / "inbox" / "truck-2" / "responses").mkdir(parents=True)
    (tmp_path / "inbox" / "truck-3").mkdir()
    (tmp_path / "inbox" / "truck-3" / "responses").symlink_to(tmp_path / "elsewhere")
    aged(tmp_path / "elsewhere" / ".r.json.0123456789ab.tmp", 7200)
    removed = remove_stale_temp_files(
        watch_root=tmp_path / "inbox", state_dir=tmp_path / "no-state", mirror_roots=[tmp_path / "no-mirror"]
    )
    assert removed == 0
    assert (tmp_path / "elsewhere" / ".r.json.0123456789ab.tmp").exists()  # a linked folder is never entered


def test_without_syncfs_the_mirror_fsyncs_the_file_and_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[tuple[int, int]] = []
    real_fsync = os.fsync

    def recording_fsync(descriptor: int) -> None:
        info = os.fstat(descriptor)
        synced.append((info.st_dev, info.st_ino))
        real_fsync(descriptor)

    monkeypatch.setattr(local_provider, "SYNCFS_AVAILABLE", False)
    monkeypatch.setattr(os, "fsync", recording_fsync)
    source = tmp_path / "inbox/truck-1/requests/a.txt"
    source.parent.mkdir(parents=True)
    source.write_bytes(b"content")
    provider = local_provider.LocalProvider(LocalTarget(name="local", provider="local", root=tmp_path / "mirror"))
    job = UploadJob(
        source,
        "truck-1/requests/a.txt",
        7,
        hashlib.sha256(b"content").hexdigest(),
        source.stat().st_mtime_ns,
    )
    provider.upload_blocking(job)
    placed = tmp_path / "mirror/truck-1/requests/a.txt"
    file_info, folder_info = placed.stat(), placed.parent.stat()
    assert (file_info.st_dev, file_info.st_ino) in synced
    assert (folder_info.st_dev, folder_info.st_ino) in synced
    assert synced.index((folder_info.st_dev, folder_info.st_ino)) > synced.index((file_info.st_dev, file_info.st_ino))
