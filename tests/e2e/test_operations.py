"""Operations against the running daemon: HTTP status/health/metrics/retry, sd_notify, start-up
without a database, and a backup taken during a burst restored into a fresh state directory."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cloudwatcher.database import EmbeddedPostgres
from tests.conftest import world_readable_tempdir
from tests.support.daemon_process import DaemonProcess
from tests.support.net import free_port

pytestmark = pytest.mark.slow
Daemon = Callable[..., DaemonProcess]
TOKEN = "test-token-123"


async def test_http_status_health_metrics_and_retry(daemon: Daemon) -> None:
    port = free_port()
    # One attempt: the row gives up and stays failed until the HTTP retry re-queues it.
    one_attempt = {"initial_delay_seconds": 0.5, "max_delay_seconds": 1, "max_attempts": 1, "interval_seconds": 0.5}
    d = daemon(http_bind=f"127.0.0.1:{port}", http_token=TOKEN, retry=one_attempt)
    d.mirror.write_bytes(b"")  # failing target: rows end failed, so there is something to retry
    d.start()
    await d.wait_started()
    d.drop("truck-1/requests/a.txt", b"a")
    base = f"http://127.0.0.1:{port}"

    async def failed() -> bool:
        return (await d.status_counts()).get("failed", 0) == 1

    await d.wait_for(failed, 30, "a failed row")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/healthz") as response:
            assert response.status == 200
        async with http.get(f"{base}/status") as response:
            assert response.status == 401  # a token is set: needed on loopback too
        async with http.get(f"{base}/status", headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            status = await response.json()
        assert set(status) == {
            "version",
            "targets",
            "requests",
            "devices",
            "recent_failures",
            "instances",
            "instances_not_listed",
        }
        assert status["targets"][0]["name"] == "local" and status["targets"][0]["failed"] == 1
        assert status["recent_failures"][0]["local_path"] == "truck-1/requests/a.txt"
        cli_status = json.loads(d.command("status", "--json").stdout)
        assert cli_status["targets"][0]["failed"] == status["targets"][0]["failed"]
        async with http.post(f"{base}/api/retry", json={"all": True}) as response:
            assert response.status == 401
        async with http.post(
            f"{base}/api/retry", json={"all": True}, headers={"Authorization": "Bearer wrong"}
        ) as response:
            assert response.status == 401
        d.mirror.unlink()
        async with http.post(
            f"{base}/api/retry", json={"all": True}, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as response:
            assert response.status == 200
            assert (await response.json())["requeued"] == 1
        await d.wait_synced(1, timeout=30)
        await asyncio.sleep(0.2)
        async with http.get(f"{base}/metrics") as response:
            text = await response.text()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    uploads = families["cloudwatcher_uploads"]
    synced = [s for s in uploads.samples if s.labels.get("target") == "local" and s.labels.get("outcome") == "synced"]
    assert synced and synced[0].value >= 1
    assert all(name.startswith("cloudwatcher_") for name in families)
    assert TOKEN not in d.log()
    assert d.stop() == 0


class NotifySocket:
    """A datagram socket standing in for systemd's notify socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.messages: list[tuple[float, str]] = []

    def drain(self) -> list[str]:
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                break
            self.messages.append((time.monotonic(), data.decode()))
        return [message for _, message in self.messages]

    def close(self) -> None:
        self.sock.close()


async def test_sd_notify_ready_status_watchdog_and_stopping(private_server: EmbeddedPostgres, tmp_path: Path) -> None:
    notify = NotifySocket(tmp_path / "notify.sock")
    (tmp_path / "d").mkdir()
    d = DaemonProcess(tmp_path / "d", private_server.url())
    env = dict(os.environ, NOTIFY_SOCKET=str(notify.path), WATCHDOG_USEC="1000000", PYTHONUNBUFFERED="1")
    log = d.log_path.open("ab")
    d.process = subprocess.Popen(
        [sys.executable, "-m", "cloudwatcher", "run", "--config", str(d.config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:

        async def ready() -> bool:
            return any(m.startswith("READY=1") for m in notify.drain())

        await d.wait_for(ready, 30, "READY=1")
        await asyncio.sleep(2.2)
        messages = notify.drain()
        assert sum(1 for m in messages if m.startswith("WATCHDOG=1")) >= 3  # every 0.5 s while healthy
        assert any(m.startswith("STATUS=") for m in messages)
        private_server.stop("fast")
        await asyncio.sleep(1.5)  # pings already on their way may still arrive
        notify.drain()
        quiet_since = time.monotonic()
        await asyncio.sleep(2.0)
        late = [m for t, m in notify.messages if t > quiet_since and m.startswith("WATCHDOG=1")]
        assert late == [], "no watchdog pings while the database is unreachable"
        private_server.ensure_running()

        async def pinging_again() -> bool:
            start = time.monotonic() - 1.0
            notify.drain()
            return any(t > start and m.startswith("WATCHDOG=1") for t, m in notify.messages)

        await d.wait_for(pinging_again, 30, "watchdog pings after the database is back")
        assert d.stop() == 0
        assert any(m.startswith("STOPPING=1") for m in notify.drain())
    finally:
        notify.close()
        if d.process is not None:
            d.kill()


async def test_startup_waits_for_a_database_that_is_not_up_yet(
    private_server: EmbeddedPostgres, tmp_path: Path
) -> None:
    private_server.stop("fast")
    d = DaemonProcess(tmp_path, private_server.url())
    d.drop("truck-1/requests/early.txt", b"dropped before anything ran")
    d.start()
    try:

        async def waiting_for_the_database() -> bool:
            return "database not reachable yet" in d.log()

        # wait_for fails if the daemon exits: it must keep waiting, not give up.
        await d.wait_for(waiting_for_the_database, 60, "the daemon to say it waits for the database")
        assert d.process is not None and d.process.poll() is None
        private_server.ensure_running()
        await d.wait_synced(1, timeout=60)
        assert d.stop() == 0
    finally:
        if d.process is not None:
            d.kill()


async def test_backup_during_a_burst_restores_into_a_fresh_state_directory(daemon: Daemon, tmp_path: Path) -> None:
    first = daemon()
    for index in range(300):
        first.drop(f"truck-{index % 3}/requests/f{index}.txt", f"file {index}".encode())
    first.start()
    await first.wait_started()
    backup_file = tmp_path / "ledger.dump"
    first.command("backup", str(backup_file))
    await first.wait_synced(300, timeout=90)
    assert first.stop() == 0
    rows_at_backup = backup_file.stat().st_size
    assert rows_at_backup > 0

    fresh_root = world_readable_tempdir("cloudwatcher-restore-")
    try:
        env = dict(os.environ, CLOUDWATCHER_STATE_DIR=str(fresh_root / "state"), CLOUDWATCHER_HTTP_BIND="")
        env.pop("CLOUDWATCHER_CONFIG", None)
        run = [sys.executable, "-m", "cloudwatcher"]
        restored = subprocess.run(
            [*run, "restore", str(backup_file)], env=env, capture_output=True, text=True, timeout=120
        )
        assert restored.returncode == 0, restored.stderr
        again = subprocess.run(
            [*run, "restore", str(backup_file)], env=env, capture_output=True, text=True, timeout=120
        )
        assert again.returncode == 1 and "not empty" in again.stderr
        files = subprocess.run(
            [*run, "files", "--json", "--limit", "1000"], env=env, capture_output=True, text=True, timeout=120
        )
        restored_rows = json.loads(files.stdout)
        original = await first.query("SELECT id FROM cloud_file_refs WHERE created_at <= now()")
        assert 0 < len(restored_rows) <= len(original)
        assert {row["ref_id"] for row in restored_rows} <= {str(row["id"]) for row in original}
    finally:
        EmbeddedPostgres(fresh_root / "state" / "postgres").stop()
        shutil.rmtree(fresh_root, ignore_errors=True)
