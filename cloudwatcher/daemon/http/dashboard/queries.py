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

#: How long a target may hold pending rows before the overview turns it amber.
PENDING_AMBER_SECONDS = 300.0
FILE_STATUSES = ("pending", "uploading", "synced", "failed", "gave_up")
REQUEST_STATUSES = ("pending", "processing", "completed", "failed")
GROUP_IDS_LIMIT = 10_000  # app.MAX_REF_IDS: one group's retry fits in one request
GROUP_ROWS_SHOWN = 50

_TARGET_STATES = """
SELECT target, CASE WHEN state = 'parked' AND until <= now() THEN 'ok' ELSE state END AS state, reason, until
FROM target_states
"""

_INSTANCES = """
SELECT id, host, pid, version, watch_root, started_at, last_heartbeat, stopped_at,
       extract(epoch FROM coalesce(stopped_at, now()) - started_at) AS uptime_seconds,
       extract(epoch FROM now() - last_heartbeat) AS heartbeat_age_seconds,
       stopped_at IS NULL AND last_heartbeat < now() - make_interval(secs => $1) AS stale
FROM instances
ORDER BY stopped_at IS NOT NULL, started_at DESC
LIMIT 50
"""

_THROUGHPUT = """
SELECT target, date_trunc('minute', uploaded_at) AS minute, count(*) AS n
FROM cloud_file_refs
WHERE uploaded_at >= date_trunc('minute', now()) - make_interval(mins => $1 - 1)
GROUP BY 1, 2
"""

# Only today's ledger rows are counted (the index on created_at finds them): a whole-ledger
# count per device would scan every row on every poll. Every device that ever dropped a file
# has a device_connections row, so the list is complete.
_DEVICES = """
WITH day AS (
    SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS start
), files AS (
    SELECT device_id, count(DISTINCT (local_path, content_sha256)) AS files_today, max(created_at) AS last_file
    FROM cloud_file_refs WHERE created_at >= (SELECT start FROM day) GROUP BY device_id
), reqs AS (
    SELECT device_id, count(*) AS requests_today
    FROM requests WHERE created_at >= (SELECT start FROM day) GROUP BY device_id
), sessions AS (
    SELECT DISTINCT ON (device_id) device_id, connected_at, last_seen_at, disconnected_at
    FROM device_connections ORDER BY device_id, connected_at DESC
), ids AS (
    SELECT device_id FROM files UNION SELECT device_id FROM sessions UNION SELECT device_id FROM reqs
    UNION SELECT device_id FROM device_skipped_files
)
SELECT ids.device_id,
       s.device_id IS NOT NULL AND s.disconnected_at IS NULL AS online,
       greatest(s.last_seen_at, f.last_file) AS last_seen_at,
       coalesce(f.files_today, 0) AS files_today,
       coalesce(r.requests_today, 0) AS requests_today,
       CASE WHEN s.device_id IS NOT NULL AND s.disconnected_at IS NULL
            THEN extract(epoch FROM now() - s.connected_at) END AS open_session_seconds,
       s.connected_at AS session_started_at,
       coalesce(k.skipped, 0) AS skipped
FROM ids
LEFT JOIN device_skipped_files k ON k.device_id = ids.device_id
LEFT JOIN files f ON f.device_id = ids.device_id
LEFT JOIN reqs r ON r.device_id = ids.device_id
LEFT JOIN sessions s ON s.device_id = ids.device_id
ORDER BY ids.device_id
"""

_FILES = """
SELECT id AS ref_id, target, cloud_provider AS provider, device_id, local_path, file_type, sync_status,
       sync_status = 'failed' AND next_attempt_at IS NULL AS gave_up,
       file_size_bytes, attempts, last_error, next_attempt_at, created_at, updated_at, uploaded_at
FROM cloud_file_refs
WHERE ($1::text IS NULL OR device_id = $1)
  AND ($2::text IS NULL OR strpos(lower(local_path), lower($2)) > 0)
  AND ($3::text IS NULL OR sync_status = $3
       OR ($3 = 'gave_up' AND sync_status = 'failed' AND next_attempt_at IS NULL))
  AND ($4::text IS NULL OR target = $4)
ORDER BY created_at DESC, local_path, target
LIMIT $5
"""

# Errors are grouped with their quoted parts, absolute paths and long numbers blanked out, so
# "Not a directory: '/x/a.txt'" and "... '/x/b.txt'" (or "(/x/a)" and "(/x/b)") are one group.
_ERROR_KIND = r"""regexp_replace(regexp_replace(regexp_replace(coalesce(last_error, 'no error recorded'),
                  '''[^'']*''|"[^"]*"', '…', 'g'),
                  '(^|[\s(=:])/(\S*[^\s),;])?', '\1…', 'g'),
                  '[0-9]{3,}', '#', 'g')"""

_FAILURE_GROUPS = f"""
SELECT target, {_ERROR_KIND} AS error_kind,
       count(*) AS failed,
       count(*) FILTER (WHERE next_attempt_at IS NULL) AS gave_up,
       max(updated_at) AS latest,
       (array_agg(id ORDER BY updated_at DESC, id))[1:$1] AS ref_ids
FROM cloud_file_refs
WHERE sync_status = 'failed'
GROUP BY 1, 2
ORDER BY count(*) DESC, target, error_kind
LIMIT 200
"""

_FAILURE_ROWS = f"""
SELECT * FROM (
    SELECT id AS ref_id, target, {_ERROR_KIND} AS error_kind, device_id, local_path, attempts, last_error,
           next_attempt_at, next_attempt_at IS NULL AS gave_up, updated_at,
           row_number() OVER (PARTITION BY target, {_ERROR_KIND} ORDER BY updated_at DESC, id) AS position
    FROM cloud_file_refs
    WHERE sync_status = 'failed'
) ranked
WHERE position <= $1
ORDER BY target, error_kind, position
"""

_REQUEST_SUMMARY = """
SELECT request_type, status, count(*) AS n
FROM requests
WHERE created_at >= now() - interval '24 hours'
GROUP BY 1, 2
ORDER BY 1, 2
"""

_REQUESTS = """
SELECT r.id AS request_id, r.device_id, r.request_type, r.status, r.error_code, r.local_path,
       r.created_at, r.processed_at, u.email AS user_email, s.status AS response_status
FROM requests r
LEFT JOIN users u ON u.id = r.created_by
LEFT JOIN responses s ON s.request_id = r.id
WHERE ($1::text IS NULL OR r.request_type = $1)
  AND ($2::text IS NULL OR r.status = $2)
  AND ($3::text IS NULL OR r.device_id = $3)
ORDER BY r.created_at DESC, r.id
LIMIT $4
"""


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
    if not await conn.fetchval("SELECT to_regclass('target_states') IS NOT NULL"):
        return {}
    return {row["target"]: plain_row(row) for row in await conn.fetch(_TARGET_STATES)}


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
    end = await conn.fetchval("SELECT date_trunc('minute', now())")
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
