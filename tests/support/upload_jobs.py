"""Upload jobs and save-state callbacks for tests that drive a provider directly.

Every provider test needs a local file to upload, the :class:`UploadJob` the uploader would build for
it, and the ``save_state`` callback the ledger would be. One definition here keeps the job the same
shape in the conformance suite and in each provider's own tests.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from cloudwatcher.providers import UploadJob


def make_job(tmp_path: Path, remote_path: str, data: bytes, **changes: Any) -> UploadJob:
    """A job for ``data`` at ``remote_path``; ``changes`` override any field (``resume_state=...``).

    The local copy is rewritten only when its bytes differ, so a job built again for the same file
    (a resumed upload) keeps the modification time the first one recorded.
    """
    local = tmp_path / "src" / hashlib.sha256(remote_path.encode()).hexdigest()
    local.parent.mkdir(parents=True, exist_ok=True)
    if not local.exists() or local.read_bytes() != data:
        local.write_bytes(data)
    fields: dict[str, Any] = {
        "local_file": local,
        "remote_path": remote_path,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "mtime_ns": local.stat().st_mtime_ns,
    }
    fields.update(changes)
    return UploadJob(**fields)


async def no_state(state: dict[str, Any] | None) -> None:
    """A save_state callback for tests that do not look at the session a provider saves."""
    return None


class StateLog:
    """A save_state callback that records every call, as the daemon's ledger would persist it."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any] | None] = []

    async def __call__(self, state: dict[str, Any] | None) -> None:
        self.calls.append(json.loads(json.dumps(state)))  # what survives the ledger's JSON column

    @property
    def last(self) -> dict[str, Any] | None:
        return self.calls[-1] if self.calls else None
