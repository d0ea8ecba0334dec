"""The dashboard's detail pages: one file across targets, one request with everything it caused."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from cloudwatcher.config import Settings
from cloudwatcher.daemon.http.dashboard.queries import now_iso
from cloudwatcher.daemon.http.dashboard.values import Connection, json_or_text, plain_row
from cloudwatcher.gateway import RefusedPathError, device_tree, read_at_most

#: A page polls every two seconds: larger envelopes are shown cut (the file itself is in the mirror).
ENVELOPE_SHOWN_BYTES = 256 * 1024

_LEDGER_COLUMNS = """
id AS ref_id, target, cloud_provider AS provider, device_id, local_path, file_type, sync_status,
sync_status = 'failed' AND next_attempt_at IS NULL AS gave_up, cloud_path, remote_id, remote_size,
remote_hash, verification, content_sha256, file_size_bytes, attempts, last_error, next_attempt_at,
request_id, response_id, local_state, archived_path, created_at, updated_at, uploaded_at
"""

# Every version of the file on every target (a changed file gets new rows; old ones stay as history).
_FILE_ROWS = f"""
SELECT {_LEDGER_COLUMNS} FROM cloud_file_refs
WHERE local_path = (SELECT local_path FROM cloud_file_refs WHERE id = $1)
ORDER BY created_at DESC, target
LIMIT 500
"""

_REQUEST = """
SELECT r.id AS request_id, r.device_id, r.request_type, r.status, r.error_code, r.payload_hash,
       r.local_path, r.created_at, r.updated_at, r.processed_at, u.email AS user_email,
       i.host AS processed_by_host
FROM requests r
LEFT JOIN users u ON u.id = r.created_by
LEFT JOIN instances i ON i.id = r.processed_by
WHERE r.id = $1
"""

_REQUEST_FOR_PATH = "SELECT id FROM requests WHERE local_path = $1 ORDER BY created_at DESC LIMIT 1"

_RESPONSE = """
SELECT id AS response_id, request_id, status, content::text AS content, ai_processed, local_path,
       delivered_at, created_at, updated_at
FROM responses WHERE request_id = $1
"""

_RESPONSE_BY_ID = "SELECT request_id FROM responses WHERE id = $1"

_METADATA = "SELECT key, value FROM request_metadata WHERE request_id = $1 ORDER BY key"

_REQUEST_FILES = f"""
SELECT {_LEDGER_COLUMNS} FROM cloud_file_refs
WHERE request_id = $1 OR response_id = $2
ORDER BY file_type DESC, local_path, created_at DESC, target
LIMIT 500
"""

_ORDERS = """
SELECT o.id AS order_id, o.order_type, o.status, o.total, o.created_at, o.approved_at, o.request_id,
       l.name AS location, u.email AS created_by
FROM orders o
LEFT JOIN locations l ON l.id = o.location_id
LEFT JOIN users u ON u.id = o.created_by
WHERE o.request_id = $1 OR o.id = ANY($2::uuid[])
ORDER BY o.created_at
"""

_ORDER_HISTORY = """
SELECT h.order_id, h.event_type, h.event_description, u.email AS user_email, h.metadata::text AS metadata,
       h.created_at
FROM order_history h LEFT JOIN users u ON u.id = h.user_id
WHERE h.order_id = ANY($1::uuid[])
ORDER BY h.created_at, h.id
LIMIT 500
"""

# The request's own transaction (every row it wrote carries the transaction's now(), which is
# also requests.created_at), plus later changes to the request, its response and its orders.
_AUDIT = """
SELECT a.id AS audit_id, a.table_name, a.operation, a.record_id, u.email AS user_email,
       a.old_values::text AS old_values, a.new_values::text AS new_values, a.change_reason, a.created_at
FROM audit_logs a LEFT JOIN users u ON u.id = a.user_id
WHERE a.created_at = $1
   OR (a.table_name, a.record_id) IN (SELECT * FROM unnest($2::text[], $3::text[]))
ORDER BY a.created_at, a.table_name, a.record_id
LIMIT 500
"""


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _response(row: asyncpg.Record | None) -> dict[str, Any] | None:
    if row is None:
        return None
    response = plain_row(row)
    response["content"] = json_or_text(row["content"])
    return response


async def file_detail(conn: Connection, ref_id: uuid.UUID) -> dict[str, Any] | None:
    """Every ledger row of the file ``ref_id`` belongs to, and its request and response."""
    rows = [plain_row(row) for row in await conn.fetch(_FILE_ROWS, ref_id)]
    if not rows:
        return None
    selected = next(row for row in rows if row["ref_id"] == str(ref_id))
    request_id = next((row["request_id"] for row in rows if row["request_id"]), None)
    response_id = next((row["response_id"] for row in rows if row["response_id"]), None)
    if request_id is None and response_id is not None:
        request_id = await conn.fetchval(_RESPONSE_BY_ID, uuid.UUID(response_id))
    if request_id is None and selected["file_type"] == "request":
        request_id = await conn.fetchval(_REQUEST_FOR_PATH, selected["local_path"])
    request = response = None
    if request_id is not None:
        found = await conn.fetchrow(_REQUEST, _uuid(request_id))
        request = plain_row(found) if found else None
        response = _response(await conn.fetchrow(_RESPONSE, _uuid(request_id)))
    return {
        "now": now_iso(),
        "file": {key: selected[key] for key in ("ref_id", "device_id", "local_path", "file_type")},
        "rows": rows,
        "request": request,
        "response": response,
    }


def _read_from_device(settings: Settings, local_path: str, limit: int) -> tuple[bytes, int] | None:
    """Up to ``limit`` bytes of a device's file and its size, through the gateway (a link in the
    path or anything but a regular file is never read); None when it is not there."""
    try:
        fd, info = device_tree(settings.watch_path).open_file(local_path)
    except (OSError, RefusedPathError):
        return None
    try:
        return read_at_most(fd, limit), info.st_size
    finally:
        os.close(fd)


def _read_archived(settings: Settings, path: Path, limit: int) -> tuple[bytes, int] | None:
    """The same from the daemon's own archive (inside ``state_dir``, which devices cannot write)."""
    resolved = path.resolve()
    if not resolved.is_relative_to(settings.state_dir.resolve()) or not resolved.is_file():
        return None
    with resolved.open("rb") as handle:
        return handle.read(limit), os.fstat(handle.fileno()).st_size


def _read_envelope(settings: Settings, files: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """The request file's bytes from the watched folder (or the archive), as JSON when it parses."""
    candidates = [row for row in files if row["file_type"] == "request"]
    if not candidates:
        return {"source": None, "error": "no request file is recorded for this request"}
    row = candidates[0]
    shown_limit = min(limit, ENVELOPE_SHOWN_BYTES)
    found = _read_from_device(settings, row["local_path"], shown_limit + 1)
    if found is None and row.get("archived_path"):
        archived = Path(row["archived_path"])
        archived = archived if archived.is_absolute() else settings.state_dir / archived
        found = _read_archived(settings, archived, shown_limit + 1)
    if found is not None:
        raw, size = found
        truncated = len(raw) > shown_limit
        text = raw[:shown_limit].decode("utf-8", errors="replace")
        parsed: Any = None
        if not truncated:
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
        shown = {"text": text, "json": parsed, "size": size, "truncated": truncated}
        return {"source": row["local_path"], **shown, "error": None}
    return {"source": row["local_path"], "error": "the request file is no longer in the watched folder"}


async def request_detail(conn: Connection, settings: Settings, request_id: uuid.UUID) -> dict[str, Any] | None:
    """A request with its envelope, metadata, files, response, audit rows, orders and their history."""
    found = await conn.fetchrow(_REQUEST, request_id)
    if found is None:
        return None
    request = plain_row(found)
    response_row = await conn.fetchrow(_RESPONSE, request_id)
    response = _response(response_row)
    response_id = response_row["response_id"] if response_row else None
    files = [plain_row(row) for row in await conn.fetch(_REQUEST_FILES, request_id, response_id)]
    envelope = await asyncio.to_thread(_read_envelope, settings, files, settings.max_request_bytes)
    # Orders it created, and the order an order action (approve, receive, ...) named.
    named = []
    for source in (envelope.get("json"), response["content"] if response else None):
        if isinstance(source, dict):
            for holder in (source.get("payload"), source.get("result")):
                if isinstance(holder, dict) and _uuid(holder.get("order_id")):
                    named.append(_uuid(holder.get("order_id")))
    orders = [plain_row(row) for row in await conn.fetch(_ORDERS, request_id, named)]
    order_ids = [uuid.UUID(order["order_id"]) for order in orders]
    history = []
    for row in await conn.fetch(_ORDER_HISTORY, order_ids):
        event = plain_row(row)
        event["metadata"] = json_or_text(row["metadata"])
        history.append(event)
    records = [("requests", str(request_id))]
    records += [("responses", str(response_id))] if response_id else []
    records += [("orders", str(order_id)) for order_id in order_ids]
    audit = []
    for row in await conn.fetch(_AUDIT, found["created_at"], [t for t, _ in records], [r for _, r in records]):
        entry = plain_row(row)
        entry["old_values"] = json_or_text(row["old_values"])
        entry["new_values"] = json_or_text(row["new_values"])
        audit.append(entry)
    metadata = {row["key"]: row["value"] for row in await conn.fetch(_METADATA, request_id)}
    return {
        "now": now_iso(),
        "request": request,
        "metadata": metadata,
        "envelope": envelope,
        "files": files,
        "response": response,
        "audit": audit,
        "orders": orders,
        "order_history": history,
    }
