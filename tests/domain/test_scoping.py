"""Department scoping: a user acts on locations of their departments and of those below them."""

from __future__ import annotations

import pytest

from tests.support.domain import Devices, envelope

# Tree: Northwind Fleet Services > Operations > North Region > {North Depot Workshop, North Mobile Crews}
#                                             > South Region > South Depot Workshop
CASES = [
    ("tom.hughes", "Truck N-101", "completed"),  # his own department
    ("tom.hughes", "North Depot", "forbidden"),  # a sibling department
    ("priya.nair", "North Depot", "completed"),  # below North Region
    ("priya.nair", "Truck N-102", "completed"),  # below North Region
    ("priya.nair", "South Depot", "forbidden"),  # another region
    ("james.okafor", "South Depot", "completed"),  # two levels below Operations
    ("auditor", "Truck N-101", "completed"),  # viewer in Operations may read below it
    ("rita.kowalski", "Central Warehouse", "forbidden"),  # above her department
    ("it.admin", "South Depot", "completed"),  # admin acts everywhere
]


@pytest.mark.parametrize(("user", "location", "outcome"), CASES)
async def test_location_scope_follows_the_department_tree(
    devices: Devices, user: str, location: str, outcome: str
) -> None:
    response = await devices.send("tablet", "scope.json", envelope("get_parts", user, {"location": location}))
    assert response is not None
    if outcome == "completed":
        assert response["status"] == "completed", response
        assert response["result"]["location"] == location
    else:
        assert response["error"]["code"] == outcome, response


async def test_orders_outside_the_users_departments_are_forbidden(devices: Devices) -> None:
    order = envelope(
        "create_order", "diego.ramos", {"location": "North Depot", "items": [{"part_code": "BLB-H7", "quantity": 1}]}
    )
    response = await devices.send("tablet", "order.json", order)
    assert response is not None and response["error"]["code"] == "forbidden"
