"""create_order (suppliers, pricing, approval levels, manager chain) and the order workflow."""

from __future__ import annotations

import datetime as dt
import json

import asyncpg

from tests.support.domain import NORTH, Devices, Orders, approvers, email, stock
from tests.support.rows import one_row


async def test_small_order_needs_one_approval_from_the_locations_manager(
    devices: Devices, db: asyncpg.Connection
) -> None:
    orders = Orders(devices)
    response = await orders.create("rita.kowalski", NORTH, [{"part_code": "OIL-FLT-01", "quantity": 10}])
    assert response["status"] == "completed", response
    result = response["result"]
    assert result["status"] == "pending-approval"
    assert result["total"] == 62  # cheapest active offer: Northern Filters at 6.20 (OldCo is inactive)
    assert result["approvals"] == [{"level": 1, "approver": email("sam.becker")}]
    item = await one_row(
        db,
        "SELECT s.name, oi.unit_price, oi.quantity_ordered "
        "FROM order_items oi JOIN suppliers s ON s.id = oi.supplier_id",
    )
    assert (item["name"], float(item["unit_price"]), item["quantity_ordered"]) == (
        "Northern Filters Ltd",
        6.2,
        10,
    )
    decision = await one_row(db, "SELECT * FROM agent_decisions WHERE agent_name = 'PartsSpecialist'")
    assert decision["decision_type"] == "supplier_selection"
    assert decision["decision_value"] == "Northern Filters Ltd"
    reasoning = json.loads(decision["reasoning"])
    assert reasoning["rule"] == "cheapest active offer"
    assert {c["supplier"] for c in reasoning["candidates"]} == {
        "Northern Filters Ltd",
        "FleetParts Direct",
        "OldCo Parts",
    }
    router = await db.fetchval("SELECT decision_value FROM agent_decisions WHERE agent_name = 'RequestRouter'")
    assert router == "orders.create_order"
    history = await db.fetch("SELECT event_type, user_id FROM order_history")
    assert [h["event_type"] for h in history] == ["created"]


async def test_preferred_offer_wins_over_a_cheaper_one_and_a_named_supplier_wins_over_both(
    devices: Devices,
) -> None:
    orders = Orders(devices)
    preferred = await orders.create("rita.kowalski", NORTH, [{"part_code": "TYR-225-75", "quantity": 1}])
    assert preferred["result"]["total"] == 96  # FleetParts' preferred offer, not Budget's 88
    named = await orders.create(
        "rita.kowalski", NORTH, [{"part_code": "TYR-225-75", "quantity": 1, "supplier": "Budget Auto Spares"}]
    )
    assert named["result"]["total"] == 88
    unknown = await orders.create(
        "rita.kowalski", NORTH, [{"part_code": "OIL-FLT-01", "quantity": 1, "supplier": "OldCo Parts"}]
    )
    assert unknown["status"] == "failed" and unknown["error"]["code"] == "not_found"


async def test_approval_levels_follow_the_total(devices: Devices) -> None:
    orders = Orders(devices)
    two = await orders.create(
        "rita.kowalski", NORTH, [{"part_code": "BRK-PAD-F", "variant_code": "HD", "quantity": 20}]
    )
    assert two["result"]["total"] == 1168  # 20 x 58.40, Brakeline's preferred offer for HD
    assert approvers(two) == ["sam.becker", "priya.nair"]
    three = await orders.create("rita.kowalski", NORTH, [{"part_code": "TYR-225-75", "quantity": 120}])
    assert three["result"]["total"] == 11520
    assert approvers(three) == ["sam.becker", "priya.nair", "james.okafor"]
    exactly_1000 = await orders.create(
        "rita.kowalski",
        NORTH,
        [{"part_code": "BLB-H7", "quantity": 1}, {"part_code": "BAT-12V-100", "quantity": 7}],
    )
    assert exactly_1000["result"]["total"] == 927.75
    assert approvers(exactly_1000) == ["sam.becker"]


async def test_departments_without_a_manager_are_skipped(devices: Devices) -> None:
    orders = Orders(devices)
    # Truck N-101 belongs to North Mobile Crews, which has no manager: the chain starts at North Region.
    response = await orders.create("tom.hughes", "Truck N-101", [{"part_code": "TYR-225-75", "quantity": 11}])
    assert response["result"]["total"] == 1056
    assert approvers(response) == ["priya.nair", "james.okafor"]


async def test_too_few_managers_above_the_location_is_no_approver(devices: Devices, db: asyncpg.Connection) -> None:
    orders = Orders(devices)
    response = await orders.create("james.okafor", "Central Warehouse", [{"part_code": "TYR-225-75", "quantity": 120}])
    assert response["status"] == "failed" and response["error"]["code"] == "no_approver"
    assert await db.fetchval("SELECT count(*) FROM orders") == 0
    assert await db.fetchval("SELECT count(*) FROM agent_decisions") == 0


async def test_approval_chain_in_turn_then_place_and_receive(devices: Devices, db: asyncpg.Connection) -> None:
    orders = Orders(devices)
    created = await orders.create(
        "rita.kowalski", NORTH, [{"part_code": "BRK-PAD-F", "variant_code": "HD", "quantity": 20}]
    )
    order_id = created["result"]["order_id"]

    early = await orders.send("approve_order", "priya.nair", {"order_id": order_id})
    assert early["status"] == "failed" and early["error"]["code"] == "conflict"
    assert "sam.becker" in early["error"]["message"]
    technician = await orders.send("approve_order", "rita.kowalski", {"order_id": order_id})
    assert technician["error"]["code"] == "forbidden"
    too_soon = await orders.send("place_order", "sam.becker", {"order_id": order_id})
    assert too_soon["error"]["code"] == "conflict"

    first = await orders.send("approve_order", "sam.becker", {"order_id": order_id, "notes": "pads are low"})
    assert first["result"] == {"order_id": order_id, "status": "pending-approval"}
    second = await orders.send("approve_order", "priya.nair", {"order_id": order_id})
    assert second["result"] == {"order_id": order_id, "status": "approved"}
    row = await one_row(
        db, "SELECT o.status, u.email, o.approved_at FROM orders o JOIN users u ON u.id = o.approved_by"
    )
    assert (row["status"], row["email"]) == ("approved", email("priya.nair")) and row["approved_at"] is not None

    placed = await orders.send("place_order", "sam.becker", {"order_id": order_id})
    assert placed["result"] == {"order_id": order_id, "status": "ordered"}
    expected = await db.fetchval("SELECT expected_delivery_date FROM order_items")
    assert expected == dt.date.today() + dt.timedelta(days=4)  # Brakeline's lead time

    before = await stock(db, NORTH, "BRK-PAD-F", "HD")
    partial = await orders.send(
        "receive_order",
        "rita.kowalski",
        {"order_id": order_id, "items": [{"part_code": "BRK-PAD-F", "variant_code": "HD", "quantity": 5}]},
    )
    assert partial["result"] == {"order_id": order_id, "status": "ordered"}
    over = await orders.send(
        "receive_order",
        "rita.kowalski",
        {"order_id": order_id, "items": [{"part_code": "BRK-PAD-F", "variant_code": "HD", "quantity": 16}]},
    )
    assert over["error"]["code"] == "invalid_request"
    stranger = await orders.send(
        "receive_order",
        "rita.kowalski",
        {"order_id": order_id, "items": [{"part_code": "BLB-H7", "quantity": 1}]},
    )
    assert stranger["error"]["code"] == "invalid_request"
    rest = await orders.send(
        "receive_order",
        "rita.kowalski",
        {"order_id": order_id, "items": [{"part_code": "BRK-PAD-F", "variant_code": "HD", "quantity": 15}]},
    )
    assert rest["result"] == {"order_id": order_id, "status": "received"}
    assert await stock(db, NORTH, "BRK-PAD-F", "HD") == before + 20

    events = [
        r["event_type"] for r in await db.fetch("SELECT event_type FROM order_history ORDER BY created_at, event_type")
    ]
    assert events == ["created", "approved", "approved", "placed", "received", "received"]
    levels = await db.fetch("SELECT approval_level, status, notes FROM order_approvals ORDER BY approval_level")
    assert [(r["approval_level"], r["status"]) for r in levels] == [(1, "approved"), (2, "approved")]
    assert levels[0]["notes"] == "pads are low"


async def test_rejection_cancels_the_order_and_the_remaining_levels(devices: Devices, db: asyncpg.Connection) -> None:
    orders = Orders(devices)
    created = await orders.create("rita.kowalski", NORTH, [{"part_code": "TYR-225-75", "quantity": 120}])
    order_id = created["result"]["order_id"]
    rejected = await orders.send("reject_order", "sam.becker", {"order_id": order_id, "notes": "too many tyres"})
    assert rejected["result"] == {"order_id": order_id, "status": "cancelled"}
    statuses = [r["status"] for r in await db.fetch("SELECT status FROM order_approvals ORDER BY approval_level")]
    assert statuses == ["rejected", "cancelled", "cancelled"]
    again = await orders.send("approve_order", "sam.becker", {"order_id": order_id})
    assert again["error"]["code"] == "conflict"
    assert [r["event_type"] for r in await db.fetch("SELECT event_type FROM order_history ORDER BY created_at")] == [
        "created",
        "rejected",
    ]


async def test_cancel_order_by_its_creator_or_an_admin_only_before_it_is_ordered(
    devices: Devices, db: asyncpg.Connection
) -> None:
    orders = Orders(devices)
    mine = (await orders.create("rita.kowalski", NORTH, [{"part_code": "BLB-H7", "quantity": 2}]))["result"]["order_id"]
    other = await orders.send("cancel_order", "tom.hughes", {"order_id": mine})
    assert other["error"]["code"] == "forbidden"
    cancelled = await orders.send("cancel_order", "rita.kowalski", {"order_id": mine})
    assert cancelled["result"] == {"order_id": mine, "status": "cancelled"}
    twice = await orders.send("cancel_order", "rita.kowalski", {"order_id": mine})
    assert twice["error"]["code"] == "conflict"

    second = (await orders.create("rita.kowalski", NORTH, [{"part_code": "BLB-H7", "quantity": 2}]))["result"][
        "order_id"
    ]
    by_admin = await orders.send("cancel_order", "it.admin", {"order_id": second})
    assert by_admin["result"]["status"] == "cancelled"

    third = (await orders.create("rita.kowalski", NORTH, [{"part_code": "BLB-H7", "quantity": 2}]))["result"][
        "order_id"
    ]
    await orders.send("approve_order", "sam.becker", {"order_id": third})
    await orders.send("place_order", "sam.becker", {"order_id": third})
    late = await orders.send("cancel_order", "rita.kowalski", {"order_id": third})
    assert late["error"]["code"] == "conflict"
    missing = await orders.send("cancel_order", "rita.kowalski", {"order_id": "00000000-0000-0000-0000-000000000001"})
    assert missing["error"]["code"] == "not_found"
