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
from cloudwatcher.schema.sql import query

#: A page polls every two seconds: larger envelopes are shown cut (the file itself is in the mirror).
ENVELOPE_SHOWN_BYTES = 256 * 1024

_LEDGER_ROWS = query("dashboard_details", "ledger_rows")
_REQUEST = query("dashboard_details", "request")
_REQUEST_FOR_PATH = query("dashboard_details", "request_for_path")
_RESPONSE = query("dashboard_details", "response")
_RESPONSE_BY_ID = query("dashboard_details", "response_by_id")
_METADATA = query("dashboard_details", "metadata")
_ORDERS = query("dashboard_details", "orders")
_ORDER_HISTORY = query("dashboard_details", "order_history")
_AUDIT = query("dashboard_details", "audit")


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
    rows = [plain_row(row) for row in await conn.fetch(_LEDGER_ROWS, ref_id, None, None)]
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
    files = [plain_row(row) for row in await conn.fetch(_LEDGER_ROWS, None, request_id, response_id)]
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
