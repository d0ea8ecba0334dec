"""watch_mode = "poll": files written behind the watcher's back (no rename, new folders, rewrites in
place, as over NFS/CIFS where no inotify event ever arrives) are found by stat polling alone."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import pytest

from tests.support.daemon_process import DaemonProcess

pytestmark = pytest.mark.slow
Daemon = Callable[..., DaemonProcess]


async def test_poll_mode_picks_up_files_written_behind_the_watchers_back(daemon: Daemon) -> None:
    # The reconcile scan is far away: only polling can find what is written after the start.
    d = daemon(watch_mode="poll", poll_interval_seconds=0.5, scan_interval_seconds=3600).start()
    await d.wait_started()
    assert "(polling every 0.5 s)" in d.log()
    started = time.monotonic()
    # A device folder, nested folders and files written in place, with no rename.
    folder = d.watch_root / "van-7/requests/deep/er"
    folder.mkdir(parents=True)
    (folder / "written-in-place.bin").write_bytes(b"first")
    (d.watch_root / "van-7/requests/top.txt").write_bytes(b"top")
    await d.wait_synced(2, timeout=30)
    assert time.monotonic() - started < 15
    # Rewritten in place later (no rename): the next poll sees it.
    target = folder / "written-in-place.bin"
    target.write_bytes(b"second, longer")
    await d.wait_synced(3, timeout=30)
    assert (d.mirror / "van-7/requests/deep/er/written-in-place.bin").read_bytes() == b"second, longer"
    rows = await d.query("SELECT content_sha256 FROM cloud_file_refs WHERE local_path LIKE '%written-in-place.bin'")
    assert {row["content_sha256"] for row in rows} == {
        hashlib.sha256(b"first").hexdigest(),
        hashlib.sha256(b"second, longer").hexdigest(),
    }
    assert d.stop() == 0
