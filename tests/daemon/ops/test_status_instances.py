"""Instances in ``status``: every running or stale one listed, however many; cleanly stopped
ones beyond the newest few are counted, never dropped silently."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from cloudwatcher.cli.status_text import render_status
from cloudwatcher.config import LocalTarget, Settings
from cloudwatcher.daemon.ops.status import STOPPED_INSTANCES_LISTED, collect_status


def settings(tmp_path: Path) -> Settings:
    return Settings(
        state_dir=tmp_path / "state",
        watch_root=tmp_path / "inbox",
        targets=[LocalTarget(name="local", provider="local", root=tmp_path / "mirror")],
    )


async def _add(db: asyncpg.Connection, host: str, count: int, *, heartbeat_age: int, stopped: bool) -> None:
    await db.execute(
        """
        INSERT INTO instances (host, pid, version, watch_root, started_at, last_heartbeat, stopped_at)
        SELECT $1, n, '0.1.0', '/srv/inbox', now() - make_interval(secs => $2 + n),
               now() - make_interval(secs => $2), CASE WHEN $3 THEN now() - make_interval(secs => $2) END
        FROM generate_series(1, $4) AS n
        """,
        host,
        heartbeat_age,
        stopped,
        count,
    )


async def test_every_running_and_stale_instance_is_listed_and_stopped_ones_beyond_a_few_are_counted(
    db: asyncpg.Connection, tmp_path: Path
) -> None:
    await _add(db, "running", 40, heartbeat_age=1, stopped=False)
    await _add(db, "killed", 30, heartbeat_age=600, stopped=False)  # stale: listed and stays listed
    await _add(db, "restarted", 55, heartbeat_age=3600, stopped=True)

    snapshot = await collect_status(db, settings(tmp_path))

    hosts = [instance["host"] for instance in snapshot["instances"]]
    assert hosts.count("running") == 40 and hosts.count("killed") == 30
    assert hosts.count("restarted") == STOPPED_INSTANCES_LISTED
    assert snapshot["instances_not_listed"] == 55 - STOPPED_INSTANCES_LISTED
    assert all(i["stale"] for i in snapshot["instances"] if i["host"] == "killed")
    text = render_status(snapshot, width=80)
    assert f"and {55 - STOPPED_INSTANCES_LISTED} older stopped instance(s) not listed" in text


async def test_with_few_instances_none_is_left_out(db: asyncpg.Connection, tmp_path: Path) -> None:
    await _add(db, "running", 2, heartbeat_age=1, stopped=False)
    await _add(db, "restarted", 3, heartbeat_age=3600, stopped=True)

    snapshot = await collect_status(db, settings(tmp_path))

    assert len(snapshot["instances"]) == 5 and snapshot["instances_not_listed"] == 0
    assert "not listed" not in render_status(snapshot, width=80)
