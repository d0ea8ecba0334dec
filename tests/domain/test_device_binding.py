"""Device binding: a device listed in the reference data acts only for its users.

The example catalog binds north-depot-scanner to sam.becker and rita.kowalski, crew-n1-tablet
to tom.hughes and it-office-pc to it.admin; truck-n101 is not listed.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import asyncpg
import pytest

from cloudwatcher.domain import DeviceBinding
from tests.support.domain import Devices, business_fingerprint, email, envelope, request_row

NORTH_STOCK = {"location": "North Depot"}
TAKE_FILTER = {"location": "North Depot", "items": [{"part_code": "OIL-FLT-01", "quantity": 1}]}


def with_binding(devices: Devices, mode: str) -> Devices:
    return Devices(devices.pool, replace(devices.ctx, binding=DeviceBinding(mode)))  # type: ignore[arg-type]


async def test_a_listed_device_acts_for_its_own_users(devices: Devices) -> None:
    for user in ("sam.becker", "rita.kowalski"):
        response = await devices.send("north-depot-scanner", f"{user}.json", envelope("get_parts", user, NORTH_STOCK))
        assert response is not None and response["status"] == "completed", response


async def test_a_listed_device_claiming_another_user_is_forbidden_and_changes_nothing(
    devices: Devices, db: asyncpg.Connection
) -> None:
    before = await business_fingerprint(db)
    response = await devices.send(
        "north-depot-scanner", "admin.json", envelope("consume_parts", "it.admin", TAKE_FILTER)
    )
    assert response is not None and response["status"] == "failed"
    assert response["error"]["code"] == "forbidden"
    assert await business_fingerprint(db) == before
    row = await request_row(db, response["request_id"])
    assert row is not None and row["error_code"] == "forbidden"
    assert row["created_by"] is None  # the claimed user is not recorded as the sender


async def test_a_listed_device_learns_nothing_about_users_it_is_not_bound_to(devices: Devices) -> None:
    codes = []
    for user in ("nobody@example.com", email("kevin.doyle"), email("priya.nair")):
        response = await devices.send("crew-n1-tablet", f"{user}.json", envelope("get_parts", user, NORTH_STOCK))
        assert response is not None
        codes.append(response["error"]["code"])
    assert codes == ["forbidden", "forbidden", "forbidden"]  # not unknown_user / inactive_user


@pytest.mark.parametrize(
    "claimed",
    [
        "%@northwind-fleet.example",
        "_om.hughes@northwind-fleet.example",
        "tom.hughes@northwind-fleet.example ",
        "' OR '1'='1",
        "tom.hughes@northwind-fleet.example\u200b",
        "x" * 5000,
    ],
    ids=["like-wildcard", "like-single", "trailing-space", "sql-quote", "zero-width", "very-long"],
)
async def test_hostile_user_claims_from_a_listed_device_are_forbidden(devices: Devices, claimed: str) -> None:
    response = await devices.send("crew-n1-tablet", "hostile.json", envelope("get_parts", claimed, NORTH_STOCK))
    assert response is not None and response["status"] == "failed"
    assert response["error"]["code"] in ("forbidden", "invalid_request"), response


async def test_the_bound_users_email_matches_whatever_its_case(devices: Devices) -> None:
    response = await devices.send(
        "crew-n1-tablet",
        "case.json",
        envelope("get_parts", "Tom.Hughes@NorthWind-Fleet.example", {"location": "Truck N-101"}),
    )
    assert response is not None and response["status"] == "completed", response


async def test_an_unlisted_device_acts_under_listed_and_is_warned_about_once(
    devices: Devices, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="cloudwatcher.domain.device_binding")
    for n in range(3):
        response = await devices.send("truck-n101", f"{n}.json", envelope("get_parts", "sam.becker", NORTH_STOCK))
        assert response is not None and response["status"] == "completed"
    warnings = [r for r in caplog.records if "truck-n101" in r.getMessage()]
    assert len(warnings) == 1


async def test_strict_binding_refuses_unlisted_devices_and_keeps_listed_ones_working(devices: Devices) -> None:
    strict = with_binding(devices, "strict")
    unlisted = await strict.send("truck-n101", "a.json", envelope("get_parts", "it.admin", NORTH_STOCK))
    assert unlisted is not None and unlisted["error"]["code"] == "forbidden"
    listed = await strict.send("it-office-pc", "a.json", envelope("get_parts", "it.admin", NORTH_STOCK))
    assert listed is not None and listed["status"] == "completed"


async def test_binding_off_takes_the_envelopes_user_at_face_value(devices: Devices) -> None:
    off = with_binding(devices, "off")
    response = await off.send("crew-n1-tablet", "a.json", envelope("get_parts", "it.admin", NORTH_STOCK))
    assert response is not None and response["status"] == "completed"


async def test_a_request_for_an_external_processor_is_bound_too(devices: Devices, db: asyncpg.Connection) -> None:
    refused = await devices.send(
        "crew-n1-tablet", "ask.json", envelope("diagnose_fault", "it.admin", {"code": "P0300"})
    )
    assert refused is not None and refused["error"]["code"] == "forbidden"
    allowed = await devices.send(
        "crew-n1-tablet", "ok.json", envelope("diagnose_fault", "tom.hughes", {"code": "P0300"})
    )
    assert allowed is None  # pending: an external processor answers
    assert await db.fetchval("SELECT status FROM requests WHERE local_path = 'crew-n1-tablet/requests/ok.json'") == (
        "pending"
    )


async def test_an_invalid_envelope_from_a_listed_device_is_not_attributed_to_a_user_it_may_not_act_for(
    devices: Devices, db: asyncpg.Connection
) -> None:
    broken = {"type": "consume_parts", "user": email("it.admin"), "payload": {"location": 7}}
    refused = await devices.send("crew-n1-tablet", "broken.json", broken)
    own = await devices.send("crew-n1-tablet", "own.json", {**broken, "user": email("tom.hughes")})
    assert refused is not None and refused["error"]["code"] == "invalid_request"
    assert own is not None and own["error"]["code"] == "invalid_request"
    senders = await db.fetch(
        "SELECT r.local_path, u.email FROM requests r LEFT JOIN users u ON u.id = r.created_by ORDER BY 1"
    )
    assert [(r["local_path"], r["email"]) for r in senders] == [
        ("crew-n1-tablet/requests/broken.json", None),
        ("crew-n1-tablet/requests/own.json", email("tom.hughes")),
    ]
