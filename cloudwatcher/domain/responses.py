"""Response documents and their files.

A response file is written only after the request's transaction committed, and atomically:
the bytes go to a dot-named temporary file in the same folder (the daemon's watcher ignores
dot-files), are fsynced, and the file is renamed into place, so a device never reads half a
response and the watcher never records one. The folder is reached through the gateway
(:mod:`cloudwatcher.gateway`), never through a link a device planted.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from cloudwatcher.domain.errors import RequestError
from cloudwatcher.gateway import RefusedPathError, device_tree, escaped

log = logging.getLogger(__name__)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(value: Any) -> str:
    """JSON text for jsonb parameters and files (Decimal, UUID and dates included)."""
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def completed_document(request_id: UUID, request_type: str, result: dict[str, Any], at: datetime) -> dict[str, Any]:
    # Round-trip through JSON so the stored jsonb and the file hold exactly the same values.
    document = {
        "request_id": str(request_id),
        "type": request_type,
        "status": "completed",
        "result": result,
        "created_at": at.isoformat(),
    }
    loaded: dict[str, Any] = json.loads(to_json(document))
    return loaded


def failed_document(request_id: UUID, request_type: str, error: RequestError, at: datetime) -> dict[str, Any]:
    return {
        "request_id": str(request_id),
        "type": request_type,
        "status": "failed",
        "error": {"code": error.code, "message": error.message},
        "created_at": at.isoformat(),
    }


def encode_document(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, ensure_ascii=False, indent=2, default=_json_default) + "\n").encode("utf-8")


def _same_document(data: bytes, document: dict[str, Any]) -> bool:
    try:
        return bool(json.loads(data) == document)
    except ValueError:
        return False


def write_response_file(
    watch_root: Path, local_path: str, document: dict[str, Any], *, flushed_with: int | None = None
) -> bool:
    """:func:`ensure_response_file` in the calling thread; ``flushed_with``: see
    :meth:`cloudwatcher.gateway.DeviceTree.write_response` (the caller's ``syncfs`` makes it durable)."""
    data = encode_document(document)
    try:
        return device_tree(watch_root).write_response(
            local_path, data, unchanged=lambda existing: _same_document(existing, document), flushed_with=flushed_with
        )
    except RefusedPathError as refused:
        log.warning(
            "response for %s not written: %s; it stays in the responses table",
            escaped(local_path),
            refused.why,
        )
        return False


async def ensure_response_file(watch_root: Path, local_path: str, document: dict[str, Any]) -> bool:
    """Write the response at ``local_path`` (``<device>/responses/...``) unless the file already
    holds it; True when something was written.

    Idempotent on purpose: after a crash between commit and write, the next call writes the
    missing file; after a crash following the write, it leaves the file (and its ledger rows) alone.
    The file goes only into the device's real ``responses/`` folder (see
    :meth:`cloudwatcher.gateway.DeviceTree.write_response`): where that is a link, or the response
    path holds anything but a regular file, nothing is written and a warning says why.
    """
    return await asyncio.to_thread(write_response_file, watch_root, local_path, document)
