"""Stalls are visible: with the database answering but the recorder or the request ingestion
stuck behind a lock, ``/healthz`` answers 503 and the watchdog pings stop; a database outage
alone keeps the pings going (the daemon rides it out and exits by itself if it lasts)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from cloudwatcher.database import EmbeddedPostgres
from tests.support.daemon_process import DaemonProcess
from tests.support.net import free_port

pytestmark = pytest.mark.slow
Daemon = Callable[..., DaemonProcess]
CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog.json"
TECH = "rita.kowalski@northwind-fleet.example"
PING_EVERY = 1.5  # seconds: half of the WATCHDOG_USEC the fake systemd hands the daemon


class FakeSystemd:
    """The notify socket systemd would pass in ``$NOTIFY_SOCKET``."""

    def __init__(self, path: Path) -> None:
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(str(path))
        self.socket.setblocking(False)

    def drain(self) -> list[str]:
        messages = []
        while True:
            try:
                messages.append(self.socket.recv(4096).decode())
            except BlockingIOError:
                return messages

    async def next_ping(self, daemon: DaemonProcess) -> None:
        async def pinged() -> bool:
            return any("WATCHDOG=1" in message for message in self.drain())

        await daemon.wait_for(pinged, 30, "a WATCHDOG=1 ping")


@pytest.fixture
def systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSystemd]:
    fake = FakeSystemd(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
    monkeypatch.setenv("WATCHDOG_USEC", str(int(PING_EVERY * 2 * 1_000_000)))
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.setenv("CLOUDWATCHER_STALL_SECONDS", "3")
    yield fake
    fake.socket.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def healthz(http: aiohttp.ClientSession, daemon: DaemonProcess) -> tuple[int, str]:
    try:
        async with http.get(f"http://{daemon.settings['http_bind']}/healthz") as answer:
            return answer.status, json.loads(await answer.text()).get("reason", "")
    except aiohttp.ClientConnectionError:
        return 0, "not listening yet"


async def wait_health(http: aiohttp.ClientSession, daemon: DaemonProcess, status: int, reason: str = "") -> None:
    async def reached() -> bool:
        seen, why = await healthz(http, daemon)
        return seen == status and reason in why

    await daemon.wait_for(reached, 60, f"/healthz {status} {reason}")


@pytest.mark.parametrize(
    ("blocking_sql", "stage", "drop"),
    [
        (
            "LOCK TABLE cloud_file_refs IN ACCESS EXCLUSIVE MODE",
            "recorder",
            ("truck-n101/requests/stuck.bin", b"waits for the ledger"),
        ),
        (
            # The device's lock, as a hung transaction of another daemon would hold it.
            "SELECT pg_advisory_xact_lock(hashtextextended('cloudwatcher.device:truck-n101', 0))",
            "request ingestion",
            (
                "truck-n101/requests/stuck.json",
                json.dumps({"type": "get_parts", "user": TECH, "payload": {"location": "North Depot"}}).encode(),
            ),
        ),
    ],
    ids=["recorder", "ingestion"],
)
async def test_a_stage_stuck_while_the_database_answers_fails_healthz_and_stops_the_watchdog(
    daemon: Daemon,
    systemd: FakeSystemd,
    http: aiohttp.ClientSession,
    blocking_sql: str,
    stage: str,
    drop: tuple[str, bytes],
) -> None:
    d = daemon(http_bind=f"127.0.0.1:{free_port()}")
    d.command("load", str(CATALOG))
    d.start()
    await d.wait_started()
    await wait_health(http, d, 200)
    await systemd.next_ping(d)

    blocker = await asyncpg.connect(d.database_url)
    transaction = blocker.transaction()
    await transaction.start()
    await blocker.execute(blocking_sql)
    try:
        d.drop(*drop)
        await wait_health(http, d, 503, f"the {stage} has made no progress")

        async def withheld() -> bool:
            return "withholding watchdog pings" in d.log()

        await d.wait_for(withheld, 30, "the watchdog to stop")
        systemd.drain()
        await asyncio.sleep(PING_EVERY * 3)  # a window of three pings, all withheld
        assert (await healthz(http, d))[0] == 503
        assert not [message for message in systemd.drain() if "WATCHDOG=1" in message]
    finally:
        await transaction.rollback()
        await blocker.close()

    await wait_health(http, d, 200)
    await systemd.next_ping(d)
    assert d.stop() == 0


async def test_a_database_outage_alone_keeps_the_watchdog_fed_while_healthz_reports_it(
    private_server: EmbeddedPostgres, tmp_path: Path, systemd: FakeSystemd, http: aiohttp.ClientSession
) -> None:
    workdir = tmp_path / "daemon"
    workdir.mkdir()
    d = DaemonProcess(workdir, private_server.url(), http_bind=f"127.0.0.1:{free_port()}")
    d.start()
    try:
        await d.wait_started()
        await wait_health(http, d, 200)
        private_server.stop("fast")
        d.drop("truck-1/requests/during.txt", b"dropped during the outage")
        await wait_health(http, d, 503, "database unreachable")
        systemd.drain()
        await systemd.next_ping(d)
        await systemd.next_ping(d)
        assert (await healthz(http, d))[0] == 503, "the outage lasted through both pings"
        assert "withholding watchdog pings" not in d.log()
        private_server.ensure_running()
        await d.wait_synced(1)
        await wait_health(http, d, 200)
        assert d.stop() == 0
    finally:
        if d.process is not None:
            d.kill()
