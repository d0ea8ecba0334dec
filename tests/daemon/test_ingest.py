"""The daemon's ingestion queue: each answered request shows in the metrics by type, outcome and code."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import stat
from pathlib import Path

import asyncpg

from cloudwatcher import domain
from cloudwatcher.daemon.health import DatabaseHealth
from cloudwatcher.daemon.ingest import Ingestor
from cloudwatcher.daemon.ops import metrics


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


async def test_answered_requests_are_counted_with_their_error_code(pool: asyncpg.Pool, tmp_path: Path) -> None:
    path = tmp_path / "truck-9/requests/broken.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"{not json")
    failed_before = sample("cloudwatcher_requests_total", type="invalid", outcome="failed", code="invalid_json")
    latency_before = sample("cloudwatcher_ingest_latency_seconds_count")
    ingestor = Ingestor(pool, domain.IngestContext(tmp_path, None, 10_000), DatabaseHealth())
    ingestor.submit(
        [
            domain.DroppedFile(
                device_id="truck-9",
                local_path="truck-9/requests/broken.json",
                absolute_path=path,
                content_sha256=hashlib.sha256(b"{not json").hexdigest(),
                size=9,
                kind="request",
            )
        ]
    )
    response = tmp_path / "truck-9/responses/broken.json"
    for _ in range(100):
        if response.exists():
            break
        await asyncio.sleep(0.05)
    await ingestor.close()
    assert response.exists()
    assert sample("cloudwatcher_requests_total", type="invalid", outcome="failed", code="invalid_json") == (
        failed_before + 1
    )
    assert sample("cloudwatcher_ingest_latency_seconds_count") == latency_before + 1


def _drop(root: Path, local_path: str, data: bytes) -> domain.DroppedFile:
    path = root / local_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    device = local_path.split("/", 1)[0]
    return domain.DroppedFile(device, local_path, path, hashlib.sha256(data).hexdigest(), len(data), "request")


RECORD = """
INSERT INTO cloud_file_refs
    (target, cloud_provider, device_id, local_path, file_type, content_sha256, file_size_bytes, file_mtime_ns)
VALUES ('local', 'local', $1, $2, 'request', $3, $4, 0)
"""


async def _record(pool: asyncpg.Pool, files: list[domain.DroppedFile]) -> None:
    """In the ledger, as the daemon's recorder leaves them before it hands them over."""
    await pool.executemany(RECORD, [(f.device_id, f.local_path, f.content_sha256, f.size) for f in files])


async def test_hostile_envelopes_in_a_batch_do_not_hold_up_the_rest(pool: asyncpg.Pool, tmp_path: Path) -> None:
    """Two devices' queues, each answered as a batch: broken envelopes, an envelope whose
    response path is a symlink and one whose response path is a FIFO are mixed in. Every other
    request is answered, its row 'ready' and its file processed; the refused paths stay as they were."""
    outside = tmp_path / "outside.json"
    outside.write_text("untouched")
    root = tmp_path / "root"
    hostile = [b"{not json", b"\x00\xff", b"[]", b'{"type": "consume_parts"}', b"{" * 5000]
    files = []
    for device in ("truck-a", "truck-b"):
        for index in range(12):
            data = hostile[index % 5] if index % 3 == 0 else b'{"type": "get_parts", "user": "nobody@x.example"}'
            if index % 3 != 0:
                data = (
                    data[:-1] + f', "request_id": "00000000-0000-4000-8000-{index:04d}{ord(device[-1]):08d}"}}'.encode()
                )
            files.append(_drop(root, f"{device}/requests/{index:02d}.json", data))
    (root / "truck-a/responses").mkdir(parents=True)
    (root / "truck-a/responses/04.json").symlink_to(outside)
    (root / "truck-b/responses").mkdir(parents=True)
    os.mkfifo(root / "truck-b/responses/05.json")
    await _record(pool, files)

    ingestor = Ingestor(pool, domain.IngestContext(root, None, 10_000), DatabaseHealth())
    ingestor.submit(files)
    await ingestor.drained()
    await ingestor.close()

    for file in files:
        response = root / file.local_path.replace("/requests/", "/responses/")
        if file.local_path in ("truck-a/requests/04.json", "truck-b/requests/05.json"):
            continue
        document = json.loads(response.read_bytes())
        assert document["status"] == "failed", file.local_path
    assert (root / "truck-a/responses/04.json").is_symlink()
    assert outside.read_text() == "untouched"
    assert stat.S_ISFIFO((root / "truck-b/responses/05.json").lstat().st_mode)
    unprocessed = await pool.fetchval(
        "SELECT count(*) FROM cloud_file_refs WHERE local_path LIKE 'truck-_/requests/%' AND processed_at IS NULL"
    )
    assert unprocessed == 0
    statuses = await pool.fetch("SELECT status, count(*) AS n FROM responses GROUP BY status")
    assert {row["status"]: row["n"] for row in statuses} == {"ready": len(files)}
