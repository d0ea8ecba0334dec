"""The example fleet company as the domain tests drive it.

``Devices`` drops files as a field device does, records them in the ledger as the daemon does and
calls the domain API; ``Orders`` sends order requests from one device. The fixtures that build them
live in ``tests/domain/conftest.py``; the helpers live here so test modules import a support module,
not a conftest or another test module.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from cloudwatcher.domain import DroppedFile, IngestContext, process_request_file, process_response_file
from tests.support.daemon_process import DaemonProcess

EXAMPLE_CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog.json"
DOMAIN = "@northwind-fleet.example"

RECORD = """
INSERT INTO cloud_file_refs
    (target, cloud_provider, device_id, local_path, file_type, content_sha256, file_size_bytes, file_mtime_ns)
VALUES ($1, 'local', $2, $3, $4, $5, $6, 0)
ON CONFLICT DO NOTHING
"""


def email(name: str) -> str:
    return f"{name}{DOMAIN}"


@dataclass
class Devices:
    """Drop files as devices do, record them as the daemon does, and ingest them."""

    pool: asyncpg.Pool
    ctx: IngestContext
    targets: tuple[str, ...] = ("local",)

    @property
    def root(self) -> Path:
        return self.ctx.watch_root

    async def record(self, device: str, folder: str, name: str, data: bytes, kind: str) -> DroppedFile:
        path = self.root / device / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        local_path = f"{device}/{folder}/{name}"
        digest = hashlib.sha256(data).hexdigest()
        async with self.pool.acquire() as connection:
            for target in self.targets:
                await connection.execute(RECORD, target, device, local_path, kind, digest, len(data))
        return DroppedFile(device, local_path, path, digest, len(data), kind)  # type: ignore[arg-type]

    async def drop(self, device: str, name: str, envelope: dict[str, Any] | bytes) -> DroppedFile:
        data = envelope if isinstance(envelope, bytes) else json.dumps(envelope).encode()
        kind = "request" if name.endswith(".json") else "attachment"
        return await self.record(device, "requests", name, data, kind)

    async def send(self, device: str, name: str, envelope: dict[str, Any] | bytes) -> dict[str, Any] | None:
        """Drop, ingest, and return the response document (None when no response was written)."""
        file = await self.drop(device, name, envelope)
        await process_request_file(self.pool, file, self.ctx)
        return self.response(device, name)

    async def consume(self, name: str, items: list[dict[str, Any]], **extra: Any) -> dict[str, Any] | None:
        """Tom takes ``items`` from Truck N-101's stock (a consume_parts request from its device)."""
        payload = {"location": "Truck N-101", "items": items, **extra}
        return await self.send("truck-n101", name, envelope("consume_parts", "tom.hughes", payload))

    def response(self, device: str, name: str) -> dict[str, Any] | None:
        path = self.root / device / "responses" / name
        if not path.exists():
            return None
        document: dict[str, Any] = json.loads(path.read_bytes())
        return document

    async def answer(self, device: str, name: str, document: dict[str, Any] | bytes) -> DroppedFile:
        """An external processor's response file, recorded and ingested."""
        data = document if isinstance(document, bytes) else json.dumps(document).encode()
        file = await self.record(device, "responses", name, data, "response")
        await process_response_file(self.pool, file, self.ctx)
        return file


def envelope(kind: str, user: str, payload: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"type": kind, "user": email(user) if "@" not in user else user}
    if payload is not None:
        document["payload"] = payload
    document.update(extra)
    return document


async def stock(db: asyncpg.Connection, location: str, part_code: str, variant: str | None = None) -> int:
    value = await db.fetchval(
        """
        SELECT i.quantity_on_hand FROM inventory i
        JOIN parts p ON p.id = i.part_id JOIN locations l ON l.id = i.location_id
        LEFT JOIN part_variants v ON v.id = i.variant_id
        WHERE l.name = $1 AND p.part_code = $2 AND v.variant_code IS NOT DISTINCT FROM $3
        """,
        location,
        part_code,
        variant,
    )
    return int(value) if value is not None else -1


BUSINESS_TABLES = (
    "inventory",
    "part_consumption",
    "orders",
    "order_items",
    "order_approvals",
    "order_history",
    "agent_decisions",
    "users",
    "departments",
    "locations",
    "parts",
    "part_suppliers",
    "devices",
    "device_users",
)


async def business_fingerprint(db: asyncpg.Connection) -> dict[str, str]:
    """A digest of every business table, to assert that a failed request changed none of them."""
    result = {}
    for table in BUSINESS_TABLES:
        result[table] = await db.fetchval(
            f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"
        )
    return result


async def request_row(db: asyncpg.Connection, request_id: str | UUID) -> asyncpg.Record | None:
    return await db.fetchrow("SELECT * FROM requests WHERE id = $1", UUID(str(request_id)))


NORTH = "North Depot"


class Orders:
    """Send order requests from one device with a running file counter."""

    def __init__(self, devices: Devices) -> None:
        self.devices = devices
        self.count = 0

    async def send(self, kind: str, user: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.count += 1
        # A fresh request_id each time: the same bytes twice would be a duplicate
        # (docs/ledger-and-requests.md, Request envelopes).
        document = envelope(kind, user, payload, request_id=str(uuid.uuid4()))
        response = await self.devices.send("tablet-1", f"{self.count:03}.json", document)
        assert response is not None
        return response

    async def create(self, user: str, location: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        return await self.send("create_order", user, {"location": location, "items": items})


def approvers(response: dict[str, Any]) -> list[str]:
    return [a["approver"].split("@")[0] for a in response["result"]["approvals"]]


#: A field technician of the example fleet, allowed to ask for parts at North Depot.
TECH = "rita.kowalski@northwind-fleet.example"


async def start_with_the_example_fleet(d: DaemonProcess) -> None:
    """Load the example company into ``d``'s database, then start the daemon and wait for it."""
    d.command("load", str(EXAMPLE_CATALOG))
    d.start()
    await d.wait_started()
