"""``COLUMNS=80 cloudwatcher status`` on a real ledger: no line over 80 characters, no cut name."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.daemon_process import DaemonProcess

pytestmark = pytest.mark.slow
Daemon = Callable[..., DaemonProcess]
LONG_TARGET = "a-target-with-the-longest-name-a-configuration-may-give-it-63ch"
LONG_DEVICE = "truck-with-an-id-of-fifty-characters-exactly-00001"


async def test_status_fits_80_columns_without_cutting_names(daemon: Daemon, tmp_path: Path) -> None:
    assert len(LONG_TARGET) == 63 and len(LONG_DEVICE) == 50
    blocked = tmp_path / "blocked"
    blocked.write_text("not a folder: every upload to this target fails")
    d = daemon(
        targets=[
            {"name": "local", "provider": "local", "root": str(tmp_path / "mirror")},
            {"name": LONG_TARGET, "provider": "local", "root": str(blocked)},
        ]
    )
    d.start()
    await d.wait_started()
    d.drop(f"{LONG_DEVICE}/requests/" + "a-rather-long-folder-name/" * 4 + "report.bin", b"x")

    async def failed_once() -> bool:
        rows = await d.query("SELECT 1 FROM cloud_file_refs WHERE target = $1 AND attempts >= 1", LONG_TARGET)
        return bool(rows)

    await d.wait_for(failed_once, 60, "a failed upload to the long-named target")
    env = {key: value for key, value in os.environ.items() if key != "LINES"}
    result = d.command("status", env=dict(env, COLUMNS="80"))
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, result.stdout
    assert any(line.strip().startswith(LONG_TARGET) for line in lines)
    assert any(line.strip().startswith(LONG_DEVICE) for line in lines)
    assert " ago" in result.stdout
