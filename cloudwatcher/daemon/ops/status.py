"""The status snapshot (docs/operations.md, Status), shared by ``cloudwatcher status`` and ``GET /status``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg

from cloudwatcher import __version__
from cloudwatcher.config import Settings
from cloudwatcher.daemon.upload.target_state import target_states
from cloudwatcher.schema import queries
from cloudwatcher.schema.sql import query

STALE_AFTER_SECONDS = 60

_TARGETS = query("status", "targets")
_REQUESTS = query("status", "requests")
_DEVICES = query("status", "devices")
# A database not yet migrated to 0010 (read-only commands do not migrate) has no skip counts.
_NO_SKIPPED_TABLE = "(SELECT NULL::text AS device_id, 0::bigint AS skipped WHERE false)"

_FAILURES = query("status", "failures")
_INSTANCES = query("status", "instances")
_STOPPED_INSTANCES = query("status", "stopped_instances")

#: How many cleanly stopped instances ``status`` lists (the rest are counted in ``instances_not_listed``).
STOPPED_INSTANCES_LISTED = 10


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


async def _device_rows(connection: asyncpg.Connection | asyncpg.Pool) -> list[asyncpg.Record]:
    migrated = await connection.fetchval(queries.TABLE_EXISTS, "device_skipped_files")
    skipped = "device_skipped_files" if migrated else _NO_SKIPPED_TABLE
    return list(await connection.fetch(_DEVICES.format(skipped=skipped)))


async def collect_status(
    connection: asyncpg.Connection | asyncpg.Pool, settings: Settings, failures_limit: int = 20
) -> dict[str, Any]:
    """One JSON-ready object: targets, requests, devices, recent failures, instances."""
    by_target = {row["target"]: row for row in await connection.fetch(_TARGETS)}
    states = await target_states(connection)
    targets: list[dict[str, Any]] = []
    configured = [(t.name, t.provider) for t in settings.target_list]
    names = [name for name, _ in configured] + sorted(set(by_target) - {name for name, _ in configured})
    providers = dict(configured)
    for name in names:
        row = by_target.get(name)
        age = row["oldest_pending_age_seconds"] if row else None
        targets.append(
            {
                "name": name,
                "provider": providers.get(name) or (row["provider"] if row else None),
                "pending": row["pending"] if row else 0,
                "uploading": row["uploading"] if row else 0,
                "synced": row["synced"] if row else 0,
                "failed": row["failed"] if row else 0,
                "gave_up": row["gave_up"] if row else 0,
                "oldest_pending_age_seconds": round(float(age), 3) if age is not None else None,
                "last_synced_at": _iso(row["last_synced_at"]) if row else None,
                # ok, paused (cloudwatcher pause), parked (daily upload cap), full (storage quota) or
                # failing, with why and until when
                "state": states[name]["state"] if name in states else "ok",
                "state_reason": states[name]["reason"] if name in states else None,
                "state_until": states[name]["until"] if name in states else None,
            }
        )
    requests = {"pending": 0, "processing": 0, "completed": 0, "failed": 0}
    for row in await connection.fetch(_REQUESTS):
        requests[row["status"]] = row["n"]
    devices = [
        {
            "device_id": row["device_id"],
            "online": row["online"],
            "last_seen_at": _iso(row["last_seen_at"]),
            "files": row["files"],
            # Files this device left that were skipped (bad name, link, FIFO, ...): still in its folder.
            "skipped": row["skipped"],
        }
        for row in await _device_rows(connection)
    ]
    failures = [
        {
            "ref_id": str(row["ref_id"]),
            "target": row["target"],
            "local_path": row["local_path"],
            "attempts": row["attempts"],
            "last_error": row["last_error"],
            "next_attempt_at": _iso(row["next_attempt_at"]),
        }
        for row in await connection.fetch(_FAILURES, failures_limit)
    ]
    instances = [
        {
            "id": str(row["id"]),
            "host": row["host"],
            "pid": row["pid"],
            "version": row["version"],
            "started_at": _iso(row["started_at"]),
            "last_heartbeat": _iso(row["last_heartbeat"]),
            "stale": row["stale"],
            "stopped": row["stopped"],
        }
        for row in await connection.fetch(_INSTANCES, float(STALE_AFTER_SECONDS), STOPPED_INSTANCES_LISTED)
    ]
    stopped_listed = sum(1 for instance in instances if instance["stopped"])
    not_listed = int(await connection.fetchval(_STOPPED_INSTANCES)) - stopped_listed
    return {
        "version": __version__,  # of the program answering (an addition to the documented shape)
        "targets": targets,
        "requests": requests,
        "devices": devices,
        "recent_failures": failures,
        "instances": instances,
        # Cleanly stopped instances beyond the newest STOPPED_INSTANCES_LISTED (an addition to the
        # documented shape): every instance still running or stale is always in "instances".
        "instances_not_listed": not_listed,
    }
