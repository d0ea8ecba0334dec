"""One version, wherever it is shown: ``--version``, the package metadata and ``/status``."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import asyncpg

from cloudwatcher.config import Settings
from cloudwatcher.daemon.ops.status import collect_status


def test_version_flag_prints_the_installed_package_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cloudwatcher", "--version"], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"cloudwatcher {version('cloudwatcher')}\n"


async def test_status_snapshot_names_the_same_version(db: asyncpg.Connection, tmp_path: Path) -> None:
    snapshot = await collect_status(db, Settings(state_dir=tmp_path))
    assert snapshot["version"] == version("cloudwatcher")
