"""Scheduled backups of a database the daemon does not own: off unless ``backup.interval_hours`` is set."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.daemon_process import DaemonProcess
from tests.support.net import free_port

pytestmark = pytest.mark.slow
Daemon = Callable[..., DaemonProcess]


async def last_backup_metric(port: int) -> float | None:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as response:
        text = await response.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "cloudwatcher_last_backup_timestamp_seconds":
                return float(sample.value)
    return None


async def test_setting_interval_hours_turns_backups_on_for_an_external_database(daemon: Daemon) -> None:
    port = free_port()
    d = daemon(http_bind=f"127.0.0.1:{port}", backup={"interval_hours": 1, "keep": 2})
    backups = d.state_dir / "backups"
    d.start()
    await d.wait_started()

    async def backed_up() -> bool:
        return any(path.suffix == ".dump" for path in backups.glob("cloudwatcher-*"))

    await d.wait_for(backed_up, 120, "a scheduled backup")
    dump = next(backups.glob("cloudwatcher-*.dump"))

    async def metric_published() -> bool:
        return (await last_backup_metric(port) or 0) > 0

    await d.wait_for(metric_published, 30, "cloudwatcher_last_backup_timestamp_seconds")
    assert await last_backup_metric(port) == pytest.approx(dump.stat().st_mtime, abs=1)
    assert d.stop() == 0


@pytest.mark.parametrize("backup", [{}, {"interval_hours": 0}], ids=["unset", "zero"])
async def test_an_external_database_is_not_backed_up_unless_asked(daemon: Daemon, backup: dict[str, float]) -> None:
    d = daemon(backup=backup)
    d.start()
    await d.wait_started()
    d.drop("truck-1/requests/a.txt", b"a")
    await d.wait_synced(1)
    assert d.stop() == 0
    assert not list((d.state_dir / "backups").glob("cloudwatcher-*"))
