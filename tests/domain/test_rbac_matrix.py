"""The permission matrix: every role x request type x location scope x kind of device.

A request is applied only when all three rules allow it: the device may act for the user
(device_binding), the user's roles grant the permission, and the location lies in the user's
departments. The expected outcome is computed from those rules, independently of
the code under test, and compared for every combination.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest

from cloudwatcher.domain import DeviceBinding, load_catalog_file
from tests.support.domain import Devices, email, envelope

# One user per role of the example catalog, with the permissions that role grants there.
ROLES = {
    "admin": ("it.admin", {"inventory.read", "inventory.write", "orders.create"}),
    "manager": ("sam.becker", {"inventory.read", "inventory.write", "orders.create"}),
    "technician": ("rita.kowalski", {"inventory.read", "inventory.write", "orders.create"}),
    "viewer": ("auditor", {"inventory.read"}),
}
# North Depot is in every one of these users' scope; South Depot only in the admin's (all
# locations) and the auditor's (Operations, above both depots).
IN_SCOPE = {
    "it.admin": {"North Depot", "South Depot"},
    "sam.becker": {"North Depot"},
    "rita.kowalski": {"North Depot"},
    "auditor": {"North Depot", "South Depot"},
}
LOCATIONS = ("North Depot", "South Depot")
ONE_FILTER = [{"part_code": "OIL-FLT-01", "quantity": 1}]
REQUESTS = {
    # type: (permission, payload for a location)
    "get_parts": ("inventory.read", lambda location: {"location": location}),
    "update_inventory": (
        "inventory.write",
        lambda location: {"location": location, "counts": [{"part_code": "OIL-FLT-01", "quantity_on_hand": 30}]},
    ),
    "consume_parts": ("inventory.write", lambda location: {"location": location, "items": ONE_FILTER}),
    "create_order": ("orders.create", lambda location: {"location": location, "items": ONE_FILTER}),
    "diagnose_fault": (None, lambda location: {"vehicle_location": location, "code": "P0300"}),  # for a processor
}
# Kinds of device: (its id, the device_binding mode, whether it may act for the user at all).
DEVICES = {
    "bound": ("bound-device", "listed", True),
    "unlisted": ("unlisted-device", "listed", True),
    "bound-to-someone-else": ("others-device", "listed", False),
    "unlisted-under-strict": ("unlisted-device", "strict", False),
    "bound-under-strict": ("bound-device", "strict", True),
}


def expected(user: str, permissions: set[str], kind: str, location: str, device_may_act: bool) -> str:
    permission, _ = REQUESTS[kind]
    if not device_may_act:
        return "forbidden"
    if permission is None:  # only requests.create, which every role has: pending for a processor
        return "pending"
    if permission not in permissions or location not in IN_SCOPE[user]:
        return "forbidden"
    return "completed"


@pytest.mark.parametrize("device_kind", list(DEVICES))
@pytest.mark.parametrize("role", list(ROLES))
async def test_every_request_type_and_scope_follows_role_and_device_rules(
    devices: Devices, db: asyncpg.Connection, tmp_path: Path, role: str, device_kind: str
) -> None:
    user, permissions = ROLES[role]
    device, mode, may_act = DEVICES[device_kind]
    bindings = {
        "devices": [
            {"id": "bound-device", "users": [email(user)]},
            {"id": "others-device", "users": [email("maria.chen")]},
        ]
    }
    (tmp_path / "devices.json").write_text(json.dumps(bindings))
    await load_catalog_file(db, tmp_path / "devices.json")
    sender = Devices(devices.pool, replace(devices.ctx, binding=DeviceBinding(mode)))  # type: ignore[arg-type]

    outcomes: dict[tuple[str, str], str] = {}
    wanted: dict[tuple[str, str], str] = {}
    for kind, (_, payload) in REQUESTS.items():
        for location in LOCATIONS:
            name = f"{kind}-{location.replace(' ', '-')}.json"
            document = envelope(kind, user, payload(location), request_id=str(uuid.uuid4()))
            response = await sender.send(device, name, document)
            if response is None:
                status = await db.fetchval(
                    "SELECT status FROM requests WHERE local_path = $1", f"{device}/requests/{name}"
                )
                outcomes[kind, location] = status
            elif response["status"] == "completed":
                outcomes[kind, location] = "completed"
            else:
                outcomes[kind, location] = response["error"]["code"]
            wanted[kind, location] = expected(user, permissions, kind, location, may_act)
    assert outcomes == wanted
