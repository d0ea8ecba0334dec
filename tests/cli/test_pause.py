"""``cloudwatcher pause`` / ``resume``: stored in the database, obeyed by every daemon, kept across restarts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.daemon_process import DaemonProcess
from tests.support.net import free_port

pytestmark = pytest.mark.slow
Daemon = Callable[..., DaemonProcess]


def two_targets(workdir_hint: str) -> list[dict[str, str]]:
    """A target to pause ("held") and one left running ("busy"), whose syncs show the daemon at work."""
    return [
        {"name": "held", "provider": "local", "root": f"{workdir_hint}/held"},
        {"name": "busy", "provider": "local", "root": f"{workdir_hint}/busy"},
    ]


async def statuses(d: DaemonProcess, target: str) -> list[str]:
    rows = await d.query("SELECT sync_status FROM cloud_file_refs WHERE target = $1 ORDER BY created_at", target)
    return [row["sync_status"] for row in rows]


async def wait_busy_synced(d: DaemonProcess, count: int) -> None:
    async def done() -> bool:
        return (await statuses(d, "busy")).count("synced") >= count

    await d.wait_for(done, 60, f"{count} rows synced to the running target")


async def wait_held_synced(d: DaemonProcess, count: int) -> None:
    async def done() -> bool:
        return (await statuses(d, "held")).count("synced") == count

    await d.wait_for(done, 60, f"{count} rows synced to the resumed target")


def test_pausing_an_unknown_target_exits_2_naming_it(daemon: Daemon) -> None:
    d = daemon()
    for command in ("pause", "resume"):
        result = d.command(command, "nowhere", check=False)
        assert result.returncode == 2, result.stderr
        assert "nowhere" in result.stderr and "local" in result.stderr


async def test_a_pause_holds_across_a_restart_and_resume_uploads_what_was_recorded(
    daemon: Daemon, tmp_path: Path
) -> None:
    d = daemon(targets=two_targets(str(tmp_path)))
    assert d.command("pause", "held").returncode == 0
    d.start()
    await d.wait_started()
    d.drop("truck-1/requests/a.bin", b"a")
    await wait_busy_synced(d, 1)
    assert await statuses(d, "held") == ["pending"]
    assert d.stop() == 0

    d.start()
    await d.wait_started()
    d.drop("truck-1/requests/b.bin", b"b")
    await wait_busy_synced(d, 2)
    assert await statuses(d, "held") == ["pending", "pending"]
    assert not (tmp_path / "held").exists() or not any((tmp_path / "held").rglob("*.bin"))
    snapshot = json.loads(d.command("status", "--json").stdout)
    held = next(t for t in snapshot["targets"] if t["name"] == "held")
    assert held["state"] == "paused" and "paused by" in held["state_reason"]
    assert held["pending"] == 2

    assert d.command("resume", "held").returncode == 0
    await wait_held_synced(d, 2)
    assert (tmp_path / "held" / "truck-1" / "requests" / "b.bin").read_bytes() == b"b"


async def test_a_pause_is_obeyed_by_every_daemon_on_the_database(daemon: Daemon, tmp_path: Path) -> None:
    first = daemon(targets=two_targets(str(tmp_path / "first")))
    second = daemon(targets=two_targets(str(tmp_path / "second")))
    first.start()
    second.start()
    await first.wait_started()
    await second.wait_started()
    assert first.command("pause", "held").returncode == 0  # said to one daemon's database only
    first.drop("truck-1/requests/a.bin", b"a")
    second.drop("truck-2/requests/b.bin", b"b")
    await wait_busy_synced(first, 2)
    assert await statuses(first, "held") == ["pending", "pending"]

    assert second.command("resume", "held").returncode == 0
    await wait_held_synced(first, 2)
    assert (tmp_path / "first" / "held" / "truck-1" / "requests" / "a.bin").read_bytes() == b"a"
    assert (tmp_path / "second" / "held" / "truck-2" / "requests" / "b.bin").read_bytes() == b"b"


async def test_a_paused_target_shows_as_paused_in_status_http_and_metrics(daemon: Daemon, tmp_path: Path) -> None:
    port = free_port()
    d = daemon(targets=two_targets(str(tmp_path)), http_bind=f"127.0.0.1:{port}")
    d.start()
    await d.wait_started()
    assert d.command("pause", "held").returncode == 0
    again = d.command("pause", "held")
    assert again.returncode == 0 and "already paused" in again.stdout
    text_status = d.command("status").stdout
    held_line = next(line for line in text_status.splitlines() if "held" in line)
    assert "paused" in held_line

    async def metrics_say_paused() -> bool:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as response:
            text = await response.text()
        samples = {
            (s.labels["target"], s.labels["state"]): s.value
            for family in text_string_to_metric_families(text)
            if family.name == "cloudwatcher_target_state"
            for s in family.samples
        }
        return samples.get(("held", "paused")) == 1 and samples.get(("held", "ok")) == 0

    await d.wait_for(metrics_say_paused, 60, "cloudwatcher_target_state to show the pause")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/status") as response:
            status = await response.json()
        async with http.get(f"http://127.0.0.1:{port}/api/dashboard/overview") as response:
            overview = await response.json()
    assert {t["name"]: t["state"] for t in status["targets"]} == {"held": "paused", "busy": "ok"}
    dashboard_held = next(t for t in overview["targets"] if t["name"] == "held")
    assert dashboard_held["state"] == "paused" and dashboard_held["light_reason"] == "paused"

    assert d.command("resume", "held").returncode == 0
    snapshot = json.loads(d.command("status", "--json").stdout)
    assert {t["name"]: t["state"] for t in snapshot["targets"]} == {"held": "ok", "busy": "ok"}
