"""``GET /metrics`` of a running daemon tells the truth about its uploads and backlog."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from cloudwatcher.daemon.upload.failure_reasons import FAILURE_REASONS
from tests.support.daemon_process import DaemonProcess
from tests.support.net import free_port

pytestmark = pytest.mark.slow
Daemon = Callable[..., DaemonProcess]


async def scrape(port: int) -> list[Sample]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as response:
        text = await response.text()
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def series(samples: list[Sample], name: str, **labels: str) -> list[Sample]:
    return [s for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]


async def test_uploads_are_timed_and_drop_to_synced_counts_from_when_the_daemon_noticed_the_file(
    daemon: Daemon,
) -> None:
    port = free_port()
    d = daemon(http_bind=f"127.0.0.1:{port}")
    d.start()
    await d.wait_started()
    # The device's clock (or a file kept a day before sending) says yesterday; we notice it now.
    photo = d.watch_root / "truck-1/requests/old-photo.jpg"
    photo.parent.mkdir(parents=True)
    temp = photo.with_name(".old-photo.jpg.part")
    temp.write_bytes(b"taken yesterday")
    a_day_ago = time.time() - 86400
    os.utime(temp, (a_day_ago, a_day_ago))
    temp.rename(photo)
    await d.wait_synced(1)
    samples = await scrape(port)
    assert series(samples, "cloudwatcher_upload_duration_seconds_count", target="local")[0].value >= 1
    [count] = series(samples, "cloudwatcher_drop_to_synced_seconds_count", target="local")
    [total] = series(samples, "cloudwatcher_drop_to_synced_seconds_sum", target="local")
    assert count.value >= 1
    assert total.value < 600  # an mtime-based figure would be about a day
    assert d.stop() == 0


async def test_failed_uploads_carry_a_reason_and_the_backlog_counts_each_row_once(daemon: Daemon) -> None:
    port = free_port()
    one_attempt = {"initial_delay_seconds": 0.5, "max_delay_seconds": 1, "max_attempts": 1, "interval_seconds": 0.5}
    d = daemon(http_bind=f"127.0.0.1:{port}", retry=one_attempt)
    d.mirror.write_bytes(b"")  # the mirror root is a file: every upload fails, and gives up at once
    d.start()
    await d.wait_started()
    d.drop("truck-1/requests/a.txt", b"a")
    d.drop("truck-1/requests/b.txt", b"b")

    async def gave_up() -> bool:
        rows = await d.query("SELECT count(*) AS n FROM cloud_file_refs WHERE sync_status = 'failed'")
        if rows[0]["n"] != 2:
            return False
        samples = await scrape(port)
        return bool(series(samples, "cloudwatcher_backlog", target="local", status="gave_up")) and (
            series(samples, "cloudwatcher_backlog", target="local", status="gave_up")[0].value == 2
        )

    await d.wait_for(gave_up, 60, "two rows given up and published")
    samples = await scrape(port)
    failures = series(samples, "cloudwatcher_uploads_failed_total", target="local")
    assert sum(s.value for s in failures) >= 2
    assert {s.labels["reason"] for s in failures} <= FAILURE_REASONS
    backlog = {s.labels["status"]: s.value for s in series(samples, "cloudwatcher_backlog", target="local")}
    assert backlog == {"pending": 0, "uploading": 0, "failed": 0, "gave_up": 2}
    assert series(samples, "cloudwatcher_upload_duration_seconds_count", target="local")[0].value >= 2
    assert d.stop() == 0
