"""Response documents and their files.

A response file is written only after the request's transaction committed, and atomically:
the bytes go to a dot-named temporary file in the same folder (the daemon's watcher ignores
dot-files), are fsynced, and the file is renamed into place, so a device never reads half a
response and the watcher never records one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from cloudwatcher.domain.errors import RequestError


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


def response_file_path(watch_root: Path, response_local_path: str) -> Path:
    """Where a response lives; refuses anything that would leave the watch root."""
    steps = response_local_path.split("/")
    if any(step in ("", ".", "..") for step in steps) or response_local_path.startswith("/"):
        raise ValueError(f"unsafe response path {response_local_path!r}")
    return watch_root.joinpath(*steps)


def _same_document(path: Path, document: dict[str, Any]) -> bool:
    try:
        return bool(json.loads(path.read_bytes()) == document)
    except (OSError, ValueError):
        return False


def write_atomically(path: Path, data: bytes) -> None:
    """Temp dot-file in the same folder, fsync, rename, fsync the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _ensure_response_file(path: Path, document: dict[str, Any]) -> bool:
    if _same_document(path, document):
        return False
    write_atomically(path, encode_document(document))
    return True


async def ensure_response_file(path: Path, document: dict[str, Any]) -> bool:
    """Write the response unless the file already holds it; True when something was written.

    Idempotent on purpose: after a crash between commit and write, the next call writes the
    missing file; after a crash following the write, it leaves the file (and its ledger rows) alone.
    """
    return await asyncio.to_thread(_ensure_response_file, path, document)
