"""Shared pieces of the benchmarks: a throwaway daemon on the embedded database, timing, RSS."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def workspace(prefix: str) -> Path:
    """A temp folder the embedded server's user can reach when the bench runs as root."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("BENCH_TMP", "/var/tmp")))
    path.chmod(0o755)
    return path


def ensure_rclone() -> str | None:
    """rclone from Debian's package, installed here if missing; None when it cannot be had."""
    found = shutil.which("rclone")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "rclone"], capture_output=True)
    return shutil.which("rclone")


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def timed_then_sync(command: list[str]) -> float:
    """``command && sync``: the copy made durable, as the daemon's local target makes its own."""
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    os.sync()
    return time.perf_counter() - started


class BenchDaemon:
    """``cloudwatcher run`` with a state dir of its own (embedded PostgreSQL, local mirror)."""

    def __init__(self, root: Path, **settings: str) -> None:
        self.root = root
        self.state = root / "state"
        self.env = dict(
            os.environ, CLOUDWATCHER_STATE_DIR=str(self.state), CLOUDWATCHER_HTTP_BIND="", PYTHONUNBUFFERED="1"
        )
        self.env.pop("CLOUDWATCHER_CONFIG", None)
        self.env.pop("CLOUDWATCHER_DATABASE_URL", None)
        for key, value in settings.items():
            self.env[f"CLOUDWATCHER_{key.upper()}"] = value
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.started_wall = 0.0

    @property
    def inbox(self) -> Path:
        return self.state / "inbox"

    @property
    def mirror(self) -> Path:
        return self.state / "mirror"

    def start(self) -> None:
        # db-url is read-only (it refuses an unmigrated database): migrate first, as an admin would.
        subprocess.run([sys.executable, "-m", "cloudwatcher", "migrate"], env=self.env, check=True, capture_output=True)
        self.url = subprocess.run(
            [sys.executable, "-m", "cloudwatcher", "db-url"], env=self.env, check=True, capture_output=True, text=True
        ).stdout.strip()
        log_path = self.root / "daemon.log"
        seen = log_path.stat().st_size if log_path.exists() else 0  # a restart appends to the same log
        log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cloudwatcher", "run"], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while b"watching " not in log_path.read_bytes()[seen:]:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(log_path.read_text(errors="replace")[-3000:])
            time.sleep(0.05)
        time.sleep(0.3)  # let the start-up scan of the empty inbox finish

    def peak_rss_mb(self) -> float:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def kill(self) -> None:
        """``kill -9`` the daemon (a crash: no shutdown code runs) and reap it, so that its pid is
        gone and a restarted daemon sees this instance as dead."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop_daemon_only(self) -> None:
        """SIGTERM the daemon and wait; leave the database alone (another daemon owns it)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        self.stop_daemon_only()
        from cloudwatcher.database.embedded import EmbeddedPostgres

        EmbeddedPostgres(self.state / "postgres").stop()

    async def wait_synced(self, count: int, limit_seconds: float = 600, poll_seconds: float = 0.02) -> float:
        """Poll the ledger until ``count`` rows are synced; return the monotonic time it was seen."""
        connection = await asyncpg.connect(self.url)
        try:
            deadline = time.monotonic() + limit_seconds
            while time.monotonic() < deadline:
                done = await connection.fetchval("SELECT count(*) FROM cloud_file_refs WHERE sync_status = 'synced'")
                if done >= count:
                    return time.monotonic()
                await asyncio.sleep(poll_seconds)
            raise TimeoutError(f"only {done} of {count} rows synced")
        finally:
            await connection.close()

    async def phases(self) -> dict[str, float]:
        """Wall-clock landmarks of a burst, read from the ledger's own timestamps."""
        connection = await asyncpg.connect(self.url)
        try:
            row = await connection.fetchrow(
                "SELECT extract(epoch FROM min(created_at)) AS first_recorded,"
                " extract(epoch FROM max(created_at)) AS last_recorded,"
                " extract(epoch FROM min(uploaded_at)) AS first_synced,"
                " extract(epoch FROM max(uploaded_at)) AS last_synced FROM cloud_file_refs"
            )
            assert row is not None  # an aggregate always answers one row
            return {"start": self.started_wall, **{key: float(value) for key, value in row.items()}}
        finally:
            await connection.close()

    async def synced_times(self) -> dict[str, float]:
        connection = await asyncpg.connect(self.url)
        try:
            rows = await connection.fetch(
                "SELECT local_path, extract(epoch FROM uploaded_at) AS t FROM cloud_file_refs"
            )
            return {row["local_path"]: float(row["t"]) for row in rows}
        finally:
            await connection.close()
