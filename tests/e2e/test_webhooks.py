"""Webhook notifications: the outbox, delivery with backoff, and a real local HTTP receiver."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from aiohttp import web

from cloudwatcher.daemon.jobs.webhooks import deliver_notifications, prune_notifications
from cloudwatcher.daemon.ledger.store import FailedRow, FileVersion, Ledger
from cloudwatcher.daemon.upload.target_state import FAILING_AFTER, TargetStateTracker
from tests.support.daemon_process import DaemonProcess
from tests.support.rows import one_row


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 that answers ``fail_first`` requests with 503."""

    fail_first: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.content_types.append(request.content_type)
        body = await request.json()
        self.received.append(body)
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.json_response({"error": "busy"}, status=503)
        return web.Response(status=204)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    built = Receiver()
    app = web.Application()
    app.router.add_post("/hook", built.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    built.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield built
    finally:
        await runner.cleanup()


async def give_up(pool: asyncpg.Pool, name: str, reason: str) -> UUID:
    """Record a file for target 'cloud', claim it and let it give up (as the uploader does)."""
    ledger = Ledger(pool)
    content = name.encode()
    await ledger.record(
        [
            (
                "cloud",
                "local",
                FileVersion(
                    f"dev/requests/{name}", "dev", "attachment", hashlib.sha256(content).hexdigest(), len(content), 1
                ),
            )
        ]
    )
    (row,) = await ledger.claim("cloud", 10, 30, None)
    await ledger.mark_failed([FailedRow(row.id, row.claim_token, reason, None)], None)
    return row.id


async def test_a_row_that_gives_up_is_posted_as_json_with_its_reason(
    pool: asyncpg.Pool, db: asyncpg.Connection, receiver: Receiver
) -> None:
    ref_id = await give_up(pool, "a.txt", "SharePoint 403 accessDenied: no")
    assert await deliver_notifications(db, receiver.url) == 1
    (event,) = receiver.received
    assert receiver.content_types == ["application/json"]
    assert set(event) == {"id", "event", "at", "target", "local_path", "ref_id", "reason"}
    assert event["event"] == "file.gave_up" and event["target"] == "cloud"
    assert event["local_path"] == "dev/requests/a.txt" and event["ref_id"] == str(ref_id)
    assert event["reason"] == "SharePoint 403 accessDenied: no"
    assert abs(datetime.fromisoformat(event["at"]) - datetime.now(UTC)).total_seconds() < 30
    UUID(event["id"])
    assert await db.fetchval("SELECT status FROM notification_events") == "delivered"
    assert await deliver_notifications(db, receiver.url) == 0  # delivered once


async def test_a_retried_failure_and_a_changed_file_are_not_announced(
    pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    ledger = Ledger(pool)
    await ledger.record(
        [
            (
                "cloud",
                "local",
                FileVersion(f"dev/requests/{n}", "dev", "attachment", hashlib.sha256(n.encode()).hexdigest(), 1, 1),
            )
            for n in ("x", "y")
        ]
    )
    x, y = await ledger.claim("cloud", 10, 30, None)
    await ledger.mark_failed(
        [
            FailedRow(x.id, x.claim_token, "503 busy", datetime.now(UTC)),
            FailedRow(y.id, y.claim_token, "file changed during upload", None, announce=False),
        ],
        None,
    )
    assert await db.fetchval("SELECT count(*) FROM notification_events") == 0


async def test_target_failing_full_and_recovered_events_are_written_once(
    pool: asyncpg.Pool, db: asyncpg.Connection, receiver: Receiver
) -> None:
    tracker = TargetStateTracker(pool, "cloud")
    other = TargetStateTracker(pool, "cloud")  # a second daemon noticing the same trouble
    for _ in range(FAILING_AFTER + 2):
        await asyncio.gather(tracker.failed("SharePoint 503 serviceNotAvailable"), other.failed("timeout"))
    await tracker.succeeded()
    await other.succeeded()
    await tracker.full("SharePoint 507 insufficientStorage")
    await other.full("SharePoint 507 insufficientStorage")
    while await deliver_notifications(db, receiver.url):
        pass
    assert [e["event"] for e in receiver.received] == ["target.failing", "target.recovered", "target.full"]
    assert all(e["target"] == "cloud" and "local_path" not in e for e in receiver.received)
    assert len({e["id"] for e in receiver.received}) == 3


async def test_a_receiver_that_fails_twice_gets_the_event_on_the_third_try(
    pool: asyncpg.Pool, db: asyncpg.Connection, receiver: Receiver
) -> None:
    receiver.fail_first = 2
    await give_up(pool, "b.txt", "gone")
    for _ in range(100):
        if await deliver_notifications(db, receiver.url, retry_base_seconds=0.02):
            break
        await asyncio.sleep(0.02)
    assert len(receiver.received) == 3
    assert len({e["id"] for e in receiver.received}) == 1  # the same event, retried
    row = await one_row(db, "SELECT status, attempts, last_error FROM notification_events")
    assert (row["status"], row["attempts"], row["last_error"]) == ("delivered", 3, None)


async def test_an_unreachable_receiver_backs_off_and_old_events_expire(
    pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    await give_up(pool, "c.txt", "gone")
    assert await deliver_notifications(db, "http://127.0.0.1:9/hook", request_timeout=2) == 0
    row = await one_row(
        db, "SELECT status, attempts, last_error, next_attempt_at > now() AS later FROM notification_events"
    )
    assert row["status"] == "pending" and row["attempts"] == 1 and row["later"] and row["last_error"]
    assert await deliver_notifications(db, "http://127.0.0.1:9/hook") == 0  # not due yet: nothing tried
    assert await db.fetchval("SELECT attempts FROM notification_events") == 1
    await db.execute("UPDATE notification_events SET created_at = now() - interval '25 hours', next_attempt_at = now()")
    assert await deliver_notifications(db, "http://127.0.0.1:9/hook") == 0
    assert await db.fetchval("SELECT status FROM notification_events") == "expired"
    await db.execute("UPDATE notification_events SET created_at = now() - interval '40 days'")
    assert await prune_notifications(db, keep_days=30) == 1


Daemon = Callable[..., DaemonProcess]


@pytest.mark.slow
async def test_the_daemon_posts_a_give_up_to_the_webhook(daemon: Daemon, receiver: Receiver) -> None:
    d = daemon(
        notify={"webhook_url": receiver.url},
        retry={"initial_delay_seconds": 0.2, "max_delay_seconds": 0.5, "max_attempts": 1, "interval_seconds": 0.3},
    )
    d.mirror.write_bytes(b"")  # a file where the mirror folder should be: the upload fails
    d.start()
    d.drop("truck-1/requests/a.txt", b"a")
    for _ in range(300):
        if receiver.received:
            break
        await asyncio.sleep(0.1)
    assert [e["event"] for e in receiver.received] == ["file.gave_up"]
    assert receiver.received[0]["local_path"] == "truck-1/requests/a.txt"
    assert d.stop() == 0
