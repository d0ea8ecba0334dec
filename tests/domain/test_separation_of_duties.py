"""Separation of duties: the creator of an order is never one of its approvers, at any level.

The manager chain above North Depot is sam.becker (North Depot Workshop), priya.nair (North
Region), james.okafor (Operations), maria.chen (Northwind Fleet Services).
"""

from __future__ import annotations

import asyncpg

from tests.support.domain import NORTH, Devices, Orders, approvers

ONE_LEVEL = [{"part_code": "OIL-FLT-01", "quantity": 10}]  # 62
TWO_LEVELS = [{"part_code": "BRK-PAD-F", "variant_code": "HD", "quantity": 20}]  # 1168
THREE_LEVELS = [{"part_code": "TYR-225-75", "quantity": 120}]  # 11520


async def test_a_manager_ordering_for_their_own_department_is_skipped_at_level_one(devices: Devices) -> None:
    orders = Orders(devices)
    created = await orders.create("sam.becker", NORTH, ONE_LEVEL)
    assert created["status"] == "completed", created
    assert approvers(created) == ["priya.nair"]
    own = await orders.send("approve_order", "sam.becker", {"order_id": created["result"]["order_id"]})
    assert own["status"] == "failed" and own["error"]["code"] == "conflict"


async def test_the_creator_is_skipped_when_they_would_approve_level_two(devices: Devices) -> None:
    orders = Orders(devices)
    created = await orders.create("priya.nair", NORTH, TWO_LEVELS)
    assert approvers(created) == ["sam.becker", "james.okafor"]
    order_id = created["result"]["order_id"]
    first = await orders.send("approve_order", "sam.becker", {"order_id": order_id})
    assert first["result"]["status"] == "pending-approval"
    own = await orders.send("approve_order", "priya.nair", {"order_id": order_id})
    assert own["error"]["code"] == "conflict"
    last = await orders.send("approve_order", "james.okafor", {"order_id": order_id})
    assert last["result"]["status"] == "approved"


async def test_the_creator_is_skipped_when_they_would_approve_level_three(devices: Devices) -> None:
    orders = Orders(devices)
    created = await orders.create("james.okafor", NORTH, THREE_LEVELS)
    assert approvers(created) == ["sam.becker", "priya.nair", "maria.chen"]


async def test_too_few_managers_once_the_creator_is_skipped_is_no_approver(
    devices: Devices, db: asyncpg.Connection
) -> None:
    orders = Orders(devices)
    # Central Warehouse (Operations): james.okafor, then maria.chen; without James only one is left.
    response = await orders.create("james.okafor", "Central Warehouse", TWO_LEVELS)
    assert response["status"] == "failed" and response["error"]["code"] == "no_approver"
    assert await db.fetchval("SELECT count(*) FROM orders") == 0
    # The same order placed by someone else has both managers.
    by_other = await orders.create("it.admin", "Central Warehouse", TWO_LEVELS)
    assert approvers(by_other) == ["james.okafor", "maria.chen"]
