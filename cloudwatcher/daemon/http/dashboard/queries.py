"""The dashboard's list views as JSON-ready dicts: overview, throughput, devices, files, failures, requests.

Every query is a constant with ``$n`` parameters; user input (search fields) only ever
arrives as a parameter. Path search uses ``strpos`` rather than ``LIKE`` so that ``%`` and
``_`` typed by a user are plain characters.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cloudwatcher.config import Settings
from cloudwatcher.daemon.http.dashboard.values import Connection, plain_row
from cloudwatcher.daemon.ops.status import STALE_AFTER_SECONDS, StatusSnapshot, TargetStatus
from cloudwatcher.schema import queries
from cloudwatcher.schema.sql import query

#: How long a target may hold pending rows before the overview turns it amber.
PENDING_AMBER_SECONDS = 300.0
FILE_STATUSES = ("pending", "uploading", "synced", "failed", "gave_up")
REQUEST_STATUSES = ("pending", "processing", "completed", "failed")
GROUP_IDS_LIMIT = 10_000  # app.MAX_REF_IDS: one group's retry fits in one request
GROUP_ROWS_SHOWN = 50

_INSTANCES = query("dashboard", "instances")
_THROUGHPUT = query("dashboard", "throughput")
_DEVICES = query("dashboard", "devices")
_FILES = query("dashboard", "files")
_FAILURE_GROUPS = query("dashboard", "failure_groups")
_FAILURE_ROWS = query("dashboard", "failure_rows")
_REQUEST_SUMMARY = query("dashboard", "request_summary")
_REQUESTS = query("dashboard", "requests")
_THIS_MINUTE = query("dashboard", "this_minute")


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def target_light(target: TargetStatus, state: str | None) -> tuple[str, str]:
    """(red|amber|green, why) for one target of the status snapshot."""
    if state == "full":
        return "red", "storage full"
    if target["gave_up"]:
        return "red", f"{target['gave_up']} gave up"
    if state == "failing":
        return "red", "uploads keep failing"
    if state == "paused":
        return "amber", "paused"
    if state == "parked":
        return "amber", "parked (daily upload cap)"
    if target["failed"]:
        return "amber", f"{target['failed']} failed, retrying"
    age = target["oldest_pending_age_seconds"]
    if age is not None and age > PENDING_AMBER_SECONDS:
        return "amber", "backlog older than 5 minutes"
    return "green", "ok"


async def _target_states(conn: Connection) -> dict[str, dict[str, Any]]:
    # target_states arrived with a later migration; an older schema simply has none.
    if not await conn.fetchval(queries.TABLE_EXISTS, "target_states"):
        return {}
    return {row["target"]: plain_row(row) for row in await conn.fetch(queries.TARGET_STATES)}


async def overview(conn: Connection, status: StatusSnapshot) -> dict[str, Any]:
    """Targets (from the status snapshot) with their light, instances, request counts."""
    states = await _target_states(conn)
    targets = []
    for target in status["targets"]:
        state = states.get(target["name"], {})
        if target["state"] == "paused":  # the snapshot's state: a pause overrides the uploads' state
            state = {"state": "paused", "reason": target["state_reason"]}
        light, why = target_light(target, state.get("state"))
        extra = {"state": state.get("state") or "ok", "state_reason": state.get("reason")}
        targets.append({**target, **extra, "light": light, "light_reason": why})
    instances = [plain_row(row) for row in await conn.fetch(_INSTANCES, float(STALE_AFTER_SECONDS))]
    return {"now": now_iso(), "targets": targets, "instances": instances, "requests": status["requests"]}


async def throughput(conn: Connection, settings: Settings, minutes: int = 60) -> dict[str, Any]:
    """Uploads per minute and target over the last ``minutes`` (the current minute last)."""
    rows = await conn.fetch(_THROUGHPUT, minutes)
    end = await conn.fetchval(_THIS_MINUTE)
    starts = [end.timestamp() - 60 * (minutes - 1 - i) for i in range(minutes)]
    index = {start: i for i, start in enumerate(starts)}
    names = [t.name for t in settings.target_list]
    names += sorted({row["target"] for row in rows} - set(names))
    counts = {name: [0] * minutes for name in names}
    for row in rows:
        i = index.get(row["minute"].timestamp())
        if i is not None:
            counts[row["target"]][i] = row["n"]
    return {
        "now": now_iso(),
        "minutes": [datetime.fromtimestamp(s, UTC).isoformat() for s in starts],
        "targets": [{"name": name, "counts": counts[name], "total": sum(counts[name])} for name in names],
    }


async def devices(conn: Connection) -> dict[str, Any]:
    return {"now": now_iso(), "devices": [plain_row(row) for row in await conn.fetch(_DEVICES)]}


def _blank(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


async def files(
    conn: Connection,
    *,
    device: str | None = None,
    path: str | None = None,
    status: str | None = None,
    target: str | None = None,
    limit: int = 200,
) -> dict[str, Any]:
    """Ledger rows, newest first, filtered by exact device/target/status and a path substring."""
    status = _blank(status)
    if status is not None and status not in FILE_STATUSES:
        raise ValueError(f"status must be one of {', '.join(FILE_STATUSES)}")
    filters = {"device": _blank(device), "path": _blank(path), "status": status, "target": _blank(target)}
    rows = await conn.fetch(_FILES, filters["device"], filters["path"], status, filters["target"], limit + 1)
    return {
        "now": now_iso(),
        "filters": filters,
        "files": [plain_row(row) for row in rows[:limit]],
        "truncated": len(rows) > limit,
    }


async def failures(conn: Connection) -> dict[str, Any]:
    """Failed rows grouped by target and kind of error, each group with its ids for one retry."""
    groups = [plain_row(row) for row in await conn.fetch(_FAILURE_GROUPS, GROUP_IDS_LIMIT)]
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in await conn.fetch(_FAILURE_ROWS, GROUP_ROWS_SHOWN):
        by_key.setdefault((row["target"], row["error_kind"]), []).append(plain_row(row))
    for group in groups:
        group["rows"] = by_key.get((group["target"], group["error_kind"]), [])
    return {"now": now_iso(), "total": sum(g["failed"] for g in groups), "groups": groups}


async def requests(
    conn: Connection,
    *,
    request_type: str | None = None,
    status: str | None = None,
    device: str | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """Recent requests, and counts by type and outcome over the last 24 hours."""
    status = _blank(status)
    if status is not None and status not in REQUEST_STATUSES:
        raise ValueError(f"status must be one of {', '.join(REQUEST_STATUSES)}")
    summary: dict[str, dict[str, int]] = {}
    for row in await conn.fetch(_REQUEST_SUMMARY):
        summary.setdefault(row["request_type"], {})[row["status"]] = row["n"]
    rows = await conn.fetch(_REQUESTS, _blank(request_type), status, _blank(device), limit)
    return {
        "now": now_iso(),
        "summary": [{"request_type": kind, "counts": counts} for kind, counts in summary.items()],
        "requests": [plain_row(row) for row in rows],
        "filters": {"type": _blank(request_type), "status": status, "device": _blank(device)},
    }


__all__ = [
    "FILE_STATUSES",
    "REQUEST_STATUSES",
    "devices",
    "failures",
    "files",
    "overview",
    "requests",
    "target_light",
    "throughput",
]
