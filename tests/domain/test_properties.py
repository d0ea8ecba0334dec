"""Property: whatever a device drops, each envelope gets exactly one answer (a response file,
or a pending request for an external processor) and the database stays consistent."""

from __future__ import annotations

import itertools
import json
import uuid
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudwatcher.domain import process_request_file
from tests.support.domain import Devices

REQUEST_IDS = [str(uuid.UUID(int=n)) for n in (1, 2, 3)]  # a few shared ids, so duplicates happen
TYPES = [
    "get_parts", "update_inventory", "consume_parts", "create_order", "approve_order", "reject_order",
    "place_order", "receive_order", "cancel_order", "diagnose_fault",
]  # fmt: skip
USERS = [
    "tom.hughes@northwind-fleet.example", "sam.becker@northwind-fleet.example", "it.admin@northwind-fleet.example",
    "auditor@northwind-fleet.example", "kevin.doyle@northwind-fleet.example", "nobody@example.com",
]  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**15), 10**15) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
locations = st.sampled_from(["Truck N-101", "North Depot", "South Depot", "Nowhere", ""])
part_codes = st.sampled_from(["BLB-H7", "WIP-BLD-24", "BRK-PAD-F", "OIL-FLT-01", "NOPE"])
quantities = st.one_of(st.integers(-3, 8), st.just(10**12), st.sampled_from(["1", 1.5, None, True]))
items = st.lists(
    st.fixed_dictionaries(
        {"part_code": part_codes, "quantity": quantities},
        optional={"variant_code": st.sampled_from(["HD", "LD", "XX"]), "supplier": st.sampled_from(["OldCo Parts"])},
    ),
    max_size=3,
)
payloads = st.one_of(
    st.fixed_dictionaries({"location": locations, "items": items}, optional={"notes": st.text(max_size=10)}),
    st.fixed_dictionaries(
        {"location": locations}, optional={"below_reorder_point": st.booleans(), "query": st.text(max_size=4)}
    ),
    st.fixed_dictionaries(
        {
            "location": locations,
            "counts": st.lists(
                st.fixed_dictionaries({"part_code": part_codes, "quantity_on_hand": quantities}), max_size=2
            ),
        }
    ),
    st.fixed_dictionaries({"order_id": st.sampled_from([str(uuid.uuid4()), "not-a-uuid"])}),
    json_values,
)
envelopes = st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES) | st.text(max_size=60), "user": st.sampled_from(USERS)},
    optional={
        "payload": payloads,
        "request_id": st.sampled_from(REQUEST_IDS),
        "device_id": st.sampled_from(["fuzz", "someone-else"]),
        "metadata": st.dictionaries(st.text(min_size=1, max_size=5), st.integers() | st.text(max_size=5), max_size=2),
    },
)
documents = st.one_of(
    envelopes.map(lambda e: json.dumps(e).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=40),
)

names = itertools.count()


async def check_consistency(db: asyncpg.Connection) -> None:
    assert await db.fetchval("SELECT count(*) FROM requests WHERE status = 'processing'") == 0
    assert await db.fetchval("SELECT count(*) FROM responses WHERE status <> 'ready'") == 0
    # answered <=> not pending
    assert (
        await db.fetchval(
            "SELECT count(*) FROM requests r LEFT JOIN responses s ON s.request_id = r.id "
            "WHERE (r.status = 'pending') = (s.id IS NOT NULL)"
        )
        == 0
    )
    assert await db.fetchval("SELECT count(*) FROM inventory WHERE quantity_on_hand < 0") == 0
    # business rows only ever come from completed requests
    assert (
        await db.fetchval(
            "SELECT count(*) FROM part_consumption pc JOIN requests r ON r.id = pc.request_id "
            "WHERE r.status <> 'completed' OR r.request_type <> 'consume_parts'"
        )
        == 0
    )
    assert (
        await db.fetchval(
            "SELECT count(*) FROM orders o JOIN requests r ON r.id = o.request_id WHERE r.status <> 'completed'"
        )
        == 0
    )
    assert await db.fetchval("SELECT count(*) FROM cloud_file_refs WHERE processed_at IS NULL") == 0


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=documents)
async def test_every_envelope_gets_exactly_one_answer(devices: Devices, db: asyncpg.Connection, data: bytes) -> None:
    name = f"fuzz-{next(names)}.json"
    file = await devices.drop("fuzz", name, data)
    await process_request_file(devices.pool, file, devices.ctx)
    await process_request_file(devices.pool, file, devices.ctx)  # and again: still one answer

    request_id = await db.fetchval("SELECT request_id FROM cloud_file_refs WHERE local_path = $1", file.local_path)
    assert request_id is not None, "every request file is linked to a request"
    stored = await db.fetchval("SELECT content::text FROM responses WHERE request_id = $1", request_id)
    written: Any = devices.response("fuzz", name)
    if stored is None:
        assert written is None
        assert await db.fetchval("SELECT status FROM requests WHERE id = $1", request_id) == "pending"
    else:
        assert written == json.loads(stored)
        assert written["status"] in ("completed", "failed")
        if written["status"] == "failed":
            assert written["error"]["code"] in {
                "invalid_json", "invalid_request", "unknown_user", "inactive_user", "forbidden", "device_mismatch",
                "not_found", "insufficient_stock", "conflict", "no_approver", "too_large",
            }  # fmt: skip
    responses = list((devices.root / "fuzz" / "responses").rglob("*")) if (devices.root / "fuzz").exists() else []
    assert not [p for p in responses if p.name.startswith(".")], "no temporary files left behind"
    await check_consistency(db)
