"""Run ``cloudwatcher run`` as a real subprocess against a test database, as systemd would."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg


def toml_value(value: Any) -> str:
    """Enough TOML for test configurations (json strings are valid TOML basic strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items()) + "}"
    return json.dumps(str(value))


def write_config(path: Path, settings: dict[str, Any]) -> Path:
    lines: list[str] = []
    tables: list[str] = []
    for key, value in settings.items():
        if isinstance(value, dict):
            tables.append(f"\n[{key}]")
            tables.extend(f"{k} = {toml_value(v)}" for k, v in value.items())
        elif key == "targets":
            continue
        else:
            lines.append(f"{key} = {toml_value(value)}")
    for target in settings.get("targets", []):
        tables.append("\n[[targets]]")
        tables.extend(f"{k} = {toml_value(v)}" for k, v in target.items())
    path.write_text("\n".join(lines + tables) + "\n")
    return path


class DaemonProcess:
    def __init__(self, workdir: Path, database_url: str, **overrides: Any) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.state_dir = workdir / "state"
        self.watch_root = workdir / "inbox"
        self.mirror = workdir / "mirror"
        self.settings: dict[str, Any] = {
            "state_dir": str(self.state_dir),
            "watch_root": str(self.watch_root),
            "database_url": database_url,
            "settle_seconds": 0.2,
            "scan_interval_seconds": 300,
            "http_bind": "",
            "targets": [{"name": "local", "provider": "local", "root": str(self.mirror)}],
            "retry": {
                "initial_delay_seconds": 0.5,
                "max_delay_seconds": 2,
                "max_attempts": 10,
                "interval_seconds": 0.5,
            },
        }
        self.settings.update(overrides)
        self.config = write_config(workdir / "cloudwatcher.toml", self.settings)
        self.log_path = workdir / "daemon.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._starts = 0
        self.watch_root.mkdir(parents=True, exist_ok=True)

    def command(
        self,
        *args: str,
        check: bool = True,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cloudwatcher", *args, "--config", str(self.config)],
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
            env=env,
        )

    def start(self) -> DaemonProcess:
        log = self.log_path.open("ab")
        self._starts += 1
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cloudwatcher", "run", "--config", str(self.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 15) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self.process = None
        return code

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None

    def drop(self, relative: str, data: bytes, *, old: bool = True) -> Path:
        """Write a file the way a device would: a temp name, then a rename into place."""
        path = self.watch_root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.part")
        temp.write_bytes(data)
        if old:  # a finished file: its mtime is already older than settle_seconds
            stamp = time.time() - 5
            os.utime(temp, (stamp, stamp))
        os.replace(temp, path)
        return path

    async def query(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(self.database_url)
        try:
            return await connection.fetch(sql, *args)
        finally:
            await connection.close()

    async def wait_for(self, check: Callable[[], Awaitable[bool]], timeout: float = 60, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"daemon exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            if await check():
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what or check}:\n{self.log()[-4000:]}")

    async def wait_started(self, timeout: float = 60) -> None:
        """Wait until this run of the daemon has begun watching (its signal handlers are in place)."""

        async def watching() -> bool:
            return self.log().count("watching ") >= self._starts

        await self.wait_for(watching, timeout, "the daemon to start watching")

    async def status_counts(self) -> dict[str, int]:
        try:
            rows = await self.query("SELECT sync_status, count(*) AS n FROM cloud_file_refs GROUP BY 1")
        except (OSError, asyncpg.PostgresError):  # not reachable or not migrated yet
            return {}
        return {row["sync_status"]: row["n"] for row in rows}

    async def wait_synced(self, expected_rows: int, timeout: float = 90) -> None:
        async def done() -> bool:
            counts = await self.status_counts()
            return counts.get("synced", 0) >= expected_rows and sum(counts.values()) == counts.get("synced", 0)

        await self.wait_for(done, timeout, f"{expected_rows} synced rows")
