"""The daemon's ingestion queue: each answered request shows in the metrics by type, outcome and code."""

from __future__ import annotations

import asyncio
import hashlib
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
