"""The status snapshot (docs/operations.md, Status), shared by ``cloudwatcher status`` and ``GET /status``.

The snapshot is typed (:class:`StatusSnapshot` and the row types in it) so that every reader
(the CLI's text and JSON, ``GET /status``, the metrics' backlog gauges, systemd's ``STATUS=``
line, the dashboard's overview) is checked against one shape. They are ``TypedDict`` classes, not
dataclasses: a snapshot *is* the JSON object that ``status --json`` and ``GET /status`` print,
key for key and in the same order, with no conversion step that could drift from it.
"""

from __future__ import annotations

from typing import TypedDict

import asyncpg

from cloudwatcher import __version__
from cloudwatcher.config import Settings
from cloudwatcher.daemon.upload.target_state import target_states
from cloudwatcher.jsonvalue import iso_utc
from cloudwatcher.schema import queries
from cloudwatcher.schema.sql import query

__all__ = [
    "STALE_AFTER_SECONDS",
    "STOPPED_INSTANCES_LISTED",
    "DeviceStatus",
    "FailureStatus",
    "InstanceStatus",
    "StatusSnapshot",
    "TargetStatus",
    "collect_status",
]


class TargetStatus(TypedDict):
    """One target's backlog and state; ``failed`` counts every failed row, ``gave_up`` included."""

    name: str
    provider: str | None
    pending: int
    uploading: int
    synced: int
    failed: int
    gave_up: int
    oldest_pending_age_seconds: float | None
    last_synced_at: str | None
    # ok, paused (cloudwatcher pause), parked (daily upload cap), full (storage quota) or
    # failing, with why and until when
    state: str
    state_reason: str | None
    state_until: str | None


class DeviceStatus(TypedDict):
    device_id: str
    online: bool
    last_seen_at: str | None
    files: int
    # Files this device left that were skipped (bad name, link, FIFO, ...): still in its folder.
    skipped: int


class FailureStatus(TypedDict):
    ref_id: str
    target: str
    local_path: str
    attempts: int
    last_error: str | None
    next_attempt_at: str | None


class InstanceStatus(TypedDict):
    id: str
    host: str
    pid: int
    version: str
    started_at: str | None
    last_heartbeat: str | None
    stale: bool
    stopped: bool


class StatusSnapshot(TypedDict):
    """What ``status --json`` and ``GET /status`` print; timestamps are UTC ISO 8601 text."""

    version: str  # of the program answering (an addition to the documented shape)
    targets: list[TargetStatus]
    # Requests per status: pending, processing, completed and failed always, others when present.
    requests: dict[str, int]
    devices: list[DeviceStatus]
    recent_failures: list[FailureStatus]
    instances: list[InstanceStatus]
    # Cleanly stopped instances beyond the newest STOPPED_INSTANCES_LISTED (an addition to the
    # documented shape): every instance still running or stale is always in "instances".
    instances_not_listed: int


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


async def _device_rows(connection: asyncpg.Connection | asyncpg.Pool) -> list[asyncpg.Record]:
    migrated = await connection.fetchval(queries.TABLE_EXISTS, "device_skipped_files")
    skipped = "device_skipped_files" if migrated else _NO_SKIPPED_TABLE
    return list(await connection.fetch(_DEVICES.format(skipped=skipped)))


async def collect_status(
    connection: asyncpg.Connection | asyncpg.Pool, settings: Settings, failures_limit: int = 20
) -> StatusSnapshot:
    """One JSON-ready object: targets, requests, devices, recent failures, instances."""
    by_target = {row["target"]: row for row in await connection.fetch(_TARGETS)}
    states = await target_states(connection)
    targets: list[TargetStatus] = []
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
                "last_synced_at": iso_utc(row["last_synced_at"]) if row else None,
                "state": states[name]["state"] if name in states else "ok",
                "state_reason": states[name]["reason"] if name in states else None,
                "state_until": states[name]["until"] if name in states else None,
            }
        )
    requests = {"pending": 0, "processing": 0, "completed": 0, "failed": 0}
    for row in await connection.fetch(_REQUESTS):
        requests[row["status"]] = row["n"]
    devices: list[DeviceStatus] = [
        {
            "device_id": row["device_id"],
            "online": row["online"],
            "last_seen_at": iso_utc(row["last_seen_at"]),
            "files": row["files"],
            "skipped": row["skipped"],
        }
        for row in await _device_rows(connection)
    ]
    failures: list[FailureStatus] = [
        {
            "ref_id": str(row["ref_id"]),
            "target": row["target"],
            "local_path": row["local_path"],
            "attempts": row["attempts"],
            "last_error": row["last_error"],
            "next_attempt_at": iso_utc(row["next_attempt_at"]),
        }
        for row in await connection.fetch(_FAILURES, failures_limit)
    ]
    instances: list[InstanceStatus] = [
        {
            "id": str(row["id"]),
            "host": row["host"],
            "pid": row["pid"],
            "version": row["version"],
            "started_at": iso_utc(row["started_at"]),
            "last_heartbeat": iso_utc(row["last_heartbeat"]),
            "stale": row["stale"],
            "stopped": row["stopped"],
        }
        for row in await connection.fetch(_INSTANCES, float(STALE_AFTER_SECONDS), STOPPED_INSTANCES_LISTED)
    ]
    stopped_listed = sum(1 for instance in instances if instance["stopped"])
    not_listed = int(await connection.fetchval(_STOPPED_INSTANCES)) - stopped_listed
    return {
        "version": __version__,
        "targets": targets,
        "requests": requests,
        "devices": devices,
        "recent_failures": failures,
        "instances": instances,
        "instances_not_listed": not_listed,
    }
