"""SIGHUP re-reads the configuration and applies its targets without a restart."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

import pytest

from tests.support.daemon_process import DaemonProcess, write_config

pytestmark = pytest.mark.slow
Daemon = Callable[..., DaemonProcess]


async def test_sighup_adds_and_removes_targets_and_refuses_a_bad_configuration(daemon: Daemon) -> None:
    d = daemon().start()
    await d.wait_started()
    d.drop("truck-1/requests/before.txt", b"before the reload")
    await d.wait_synced(1)
    photos = d.workdir / "photos"
    d.settings["targets"] = [
        *d.settings["targets"],
        {"name": "photos", "provider": "local", "root": str(photos), "include": ["**/*.jpg"]},
    ]
    write_config(d.config, d.settings)
    d.drop("truck-1/requests/picture.jpg", b"jpeg bytes")
    assert d.process is not None
    d.process.send_signal(signal.SIGHUP)

    async def photo_mirrored() -> bool:
        return (photos / "truck-1/requests/picture.jpg").exists()

    await d.wait_for(photo_mirrored, 30, "the new target to receive the photo")
    assert not (photos / "truck-1/requests/before.txt").exists()  # its include filter
    rows = await d.query("SELECT target, local_path FROM cloud_file_refs ORDER BY target, local_path")
    assert [(r["target"], r["local_path"]) for r in rows] == [
        ("local", "truck-1/requests/before.txt"),
        ("local", "truck-1/requests/picture.jpg"),
        ("photos", "truck-1/requests/picture.jpg"),
    ]
    d.config.write_text(d.config.read_text() + "\nsettle_seconds = 'whenever'\n")
    d.process.send_signal(signal.SIGHUP)
    await asyncio.sleep(1.0)
    assert d.process.poll() is None
    assert "reload refused" in d.log() and "settle_seconds" in d.log()
    d.settings["targets"] = d.settings["targets"][:1]
    write_config(d.config, d.settings)
    d.process.send_signal(signal.SIGHUP)

    async def reloaded_twice() -> bool:
        return d.log().count("configuration reloaded:") >= 2

    await d.wait_for(reloaded_twice, 30, "the second reload")
    d.drop("truck-1/requests/after.jpg", b"only to local now")
    await d.wait_synced(4)
    assert not (photos / "truck-1/requests/after.jpg").exists()
    assert d.stop() == 0
