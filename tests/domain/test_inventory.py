"""get_parts, update_inventory and consume_parts against the example fleet company."""

from __future__ import annotations

import asyncio

import asyncpg

from tests.support.domain import Devices, email, envelope, stock


async def test_get_parts_lists_the_locations_inventory_sorted(devices: Devices) -> None:
    response = await devices.send(
        "truck-n101", "a.json", envelope("get_parts", "tom.hughes", {"location": "Truck N-101"})
    )
    assert response is not None and response["status"] == "completed", response
    result = response["result"]
    assert result["location"] == "Truck N-101"
    assert [item["part_code"] for item in result["items"]] == ["BLB-H7", "CLT-5L", "WIP-BLD-24"]
    wiper = result["items"][2]
    assert wiper == {
        "part_code": "WIP-BLD-24",
        "name": "Wiper blade 24 in",
        "category": "body",
        "variant_code": None,
        "quantity_on_hand": 4,
        "quantity_reserved": 0,
        "quantity_available": 4,
        "reorder_point": 2,
    }


async def test_get_parts_filters_by_codes_category_query_and_reorder_point(devices: Devices) -> None:
    user = "it.admin"
    by_category = await devices.send(
        "hq", "1.json", envelope("get_parts", user, {"location": "Central Warehouse", "category": "brakes"})
    )
    assert by_category is not None
    assert [(i["part_code"], i["variant_code"]) for i in by_category["result"]["items"]] == [
        ("BRK-PAD-F", "HD"),
        ("BRK-PAD-F", "LD"),
    ]
    by_query = await devices.send(
        "hq", "2.json", envelope("get_parts", user, {"location": "North Depot", "query": "filter"})
    )
    assert by_query is not None
    assert [i["part_code"] for i in by_query["result"]["items"]] == ["AIR-FLT-02", "OIL-FLT-01"]
    by_codes = await devices.send(
        "hq",
        "3.json",
        envelope("get_parts", user, {"location": "North Depot", "part_codes": ["BAT-12V-100", "NOPE"]}),
    )
    assert by_codes is not None
    assert [i["part_code"] for i in by_codes["result"]["items"]] == ["BAT-12V-100"]
    low = await devices.send(
        "hq", "4.json", envelope("get_parts", user, {"location": "Truck N-102", "below_reorder_point": True})
    )
    assert low is not None
    assert [i["part_code"] for i in low["result"]["items"]] == ["WIP-BLD-24"]


async def test_update_inventory_sets_counts_and_creates_missing_rows(devices: Devices, db: asyncpg.Connection) -> None:
    response = await devices.send(
        "truck-n101",
        "count.json",
        envelope(
            "update_inventory",
            "tom.hughes",
            {
                "location": "Truck N-101",
                "counts": [
                    {"part_code": "WIP-BLD-24", "quantity_on_hand": 1},
                    {
                        "part_code": "BRK-PAD-F",
                        "variant_code": "LD",
                        "quantity_on_hand": 2,
                        "reorder_point": 1,
                    },
                ],
            },
        ),
    )
    assert response is not None and response["result"] == {"updated": 2}, response
    assert await stock(db, "Truck N-101", "WIP-BLD-24") == 1
    assert await stock(db, "Truck N-101", "BRK-PAD-F", "LD") == 2
    counted = await db.fetchval(
        "SELECT count(*) FROM inventory i JOIN locations l ON l.id = i.location_id "
        "WHERE l.name = 'Truck N-101' AND last_counted_at IS NOT NULL"
    )
    assert counted == 2


async def test_consume_parts_takes_stock_and_reports_reorder_points(devices: Devices, db: asyncpg.Connection) -> None:
    response = await devices.consume(
        "use.json",
        [{"part_code": "WIP-BLD-24", "quantity": 2}, {"part_code": "BLB-H7", "quantity": 1}],
        notes="wipers and bulb on N-101",
    )
    assert response is not None and response["status"] == "completed", response
    assert response["result"] == {"consumed": 2, "at_or_below_reorder_point": ["WIP-BLD-24"]}
    assert await stock(db, "Truck N-101", "WIP-BLD-24") == 2
    assert await stock(db, "Truck N-101", "BLB-H7") == 5
    rows = await db.fetch(
        "SELECT pc.quantity_consumed, pc.notes, u.email, pc.request_id::text AS request_id "
        "FROM part_consumption pc JOIN users u ON u.id = pc.consumed_by ORDER BY pc.quantity_consumed"
    )
    assert [(r["quantity_consumed"], r["email"]) for r in rows] == [
        (1, email("tom.hughes")),
        (2, email("tom.hughes")),
    ]
    assert {r["request_id"] for r in rows} == {response["request_id"]}


async def test_consume_parts_with_too_little_stock_applies_nothing(devices: Devices, db: asyncpg.Connection) -> None:
    response = await devices.consume(
        "use.json", [{"part_code": "WIP-BLD-24", "quantity": 1}, {"part_code": "CLT-5L", "quantity": 3}]
    )
    assert response is not None and response["status"] == "failed"
    assert response["error"]["code"] == "insufficient_stock"
    assert "CLT-5L" in response["error"]["message"]
    assert await stock(db, "Truck N-101", "WIP-BLD-24") == 4
    assert await db.fetchval("SELECT count(*) FROM part_consumption") == 0


async def test_concurrent_consumption_of_the_same_stock_never_goes_below_zero(
    devices: Devices, db: asyncpg.Connection
) -> None:
    # 12 devices each take 1 of the 6 bulbs on N-101 at the same time: exactly 6 succeed.
    files = [
        await devices.drop(
            f"handheld-{n}",
            "take.json",
            envelope(
                "consume_parts",
                "tom.hughes",
                {"location": "Truck N-101", "items": [{"part_code": "BLB-H7", "quantity": 1}]},
            ),
        )
        for n in range(12)
    ]
    from cloudwatcher.domain import process_request_file

    await asyncio.gather(*(process_request_file(devices.pool, file, devices.ctx) for file in files))
    outcomes = [devices.response(f"handheld-{n}", "take.json") for n in range(12)]
    statuses = sorted(o["status"] if o else "none" for o in outcomes)
    assert statuses == ["completed"] * 6 + ["failed"] * 6
    assert all(o["error"]["code"] == "insufficient_stock" for o in outcomes if o and o["status"] == "failed")
    assert await stock(db, "Truck N-101", "BLB-H7") == 0
    assert await db.fetchval("SELECT sum(quantity_consumed) FROM part_consumption") == 6
