"""``cloudwatcher load``: idempotent upserts on natural keys, all-or-nothing on errors."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from cloudwatcher.domain import CatalogError, load_catalog_file
from tests.support.domain import EXAMPLE_CATALOG, business_fingerprint

TABLES = (
    "roles", "role_permissions", "users", "user_roles", "user_departments", "departments", "locations",
    "suppliers", "parts", "part_variants", "part_suppliers", "inventory", "devices", "device_users",
)  # fmt: skip


def example() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(EXAMPLE_CATALOG.read_text())
    return loaded


def write(tmp_path: Path, document: dict[str, Any], name: str = "catalog.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


async def counts(db: asyncpg.Connection) -> dict[str, int]:
    return {table: await db.fetchval(f"SELECT count(*) FROM {table}") for table in TABLES}


async def test_the_example_catalog_loads_and_loading_twice_changes_nothing(db: asyncpg.Connection) -> None:
    result = await load_catalog_file(db, EXAMPLE_CATALOG)
    assert result == {
        "roles": 4, "departments": 8, "users": 13, "devices": 4, "locations": 5, "suppliers": 5, "parts": 9,
        "inventory": 17,
    }  # fmt: skip
    first = await business_fingerprint(db)
    audit = await db.fetchval("SELECT count(*) FROM audit_logs")
    await load_catalog_file(db, EXAMPLE_CATALOG)
    assert await business_fingerprint(db) == first
    assert await db.fetchval("SELECT count(*) FROM audit_logs") == audit  # no audit noise either
    manager = await db.fetchval(
        "SELECT u.email FROM departments d JOIN users u ON u.id = d.manager_id WHERE d.name = 'North Region'"
    )
    assert manager == "priya.nair@northwind-fleet.example"
    parent = await db.fetchval(
        "SELECT p.name FROM departments d JOIN departments p ON p.id = d.parent_id WHERE d.name = 'North Mobile Crews'"
    )
    assert parent == "North Region"
    assert await db.fetchval("SELECT count(*) FROM part_suppliers") == 17


async def test_a_changed_entry_updates_only_that_row(db: asyncpg.Connection, tmp_path: Path) -> None:
    await load_catalog_file(db, EXAMPLE_CATALOG)
    document = example()
    document["suppliers"][1]["lead_time_days"] = 6
    document["roles"][3]["permissions"] = ["requests.create"]  # viewer loses inventory.read
    audit = await db.fetchval("SELECT count(*) FROM audit_logs")
    await load_catalog_file(db, write(tmp_path, document))
    assert await db.fetchval("SELECT lead_time_days FROM suppliers WHERE name = 'Brakeline Supply Co.'") == 6
    permissions = await db.fetch(
        "SELECT rp.permission FROM role_permissions rp JOIN roles r ON r.id = rp.role_id WHERE r.name = 'viewer'"
    )
    assert [r["permission"] for r in permissions] == ["requests.create"]
    assert await db.fetchval("SELECT count(*) FROM audit_logs") == audit + 2  # one UPDATE, one DELETE


MUTATIONS: list[tuple[Any, list[str]]] = [
    (lambda d: d["parts"][2]["suppliers"][0].pop("supplier_cost"), ["parts[2]", "OIL-FLT-01", "supplier_cost"]),
    (
        lambda d: d["locations"][1].update(department="Atlantis"),
        ["locations[1]", "North Depot", "department", "Atlantis"],
    ),
    (lambda d: d["users"][0].update(roles=["pilot"]), ["users[0]", "maria.chen", "roles", "pilot"]),
    (lambda d: d["inventory"][4].update(variant_code="XXL"), ["inventory[4]", "BRK-PAD-F", "variant_code", "XXL"]),
    (lambda d: d["inventory"][0].update(quantity_on_hand=-1), ["inventory[0]", "quantity_on_hand"]),
    (lambda d: d["departments"][1].update(manager="ghost@example.com"), ["departments[1]", "Operations", "manager"]),
    (lambda d: d["departments"][0].update(parent="North Region"), ["departments", "parent", "cycle"]),
    (lambda d: d["suppliers"][0].update(colour="red"), ["suppliers[0]", "FleetParts Direct", "colour"]),
    (
        lambda d: d["devices"][1]["users"].append("ghost@example.com"),
        ["devices[1]", "south-depot-scanner", "users", "ghost@example.com"],
    ),
    (lambda d: d["devices"][0].update(id="../etc"), ["devices[0]", "../etc", "id"]),
    (lambda d: d["devices"][2].pop("users"), ["devices[2]", "crew-n1-tablet", "users"]),
    (lambda d: d["devices"][3].update(users="it.admin@northwind-fleet.example"), ["devices[3]", "users"]),
    (lambda d: d["devices"].append(dict(d["devices"][0])), ["devices[4]", "north-depot-scanner", "more than once"]),
]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    MUTATIONS,
    ids=[
        "missing-key", "unknown-department", "unknown-role", "unknown-variant", "negative", "unknown-manager",
        "cycle", "unknown-key", "unknown-device-user", "device-id-not-a-folder-name", "device-without-users",
        "device-users-not-a-list", "device-listed-twice",
    ],
)  # fmt: skip
async def test_a_data_error_names_the_entry_and_key_and_loads_nothing(
    db: asyncpg.Connection, tmp_path: Path, mutate: Any, expected: list[str]
) -> None:
    document = copy.deepcopy(example())
    mutate(document)
    before = await counts(db)
    with pytest.raises(CatalogError) as raised:
        await load_catalog_file(db, write(tmp_path, document))
    message = str(raised.value)
    for fragment in expected:
        assert fragment in message, message
    assert await counts(db) == before


async def test_malformed_files_are_catalog_errors(db: asyncpg.Connection, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(CatalogError, match="not valid JSON"):
        await load_catalog_file(db, broken)
    with pytest.raises(CatalogError, match="unknown section"):
        await load_catalog_file(db, write(tmp_path, {"vehicles": []}))


async def test_yaml_catalogs_load_too(db: asyncpg.Connection, tmp_path: Path) -> None:
    path = tmp_path / "small.yaml"
    path.write_text("roles:\n  - name: viewer\n    permissions: [inventory.read, requests.create]\n")
    assert await load_catalog_file(db, path) == {"roles": 1}
    assert await db.fetchval("SELECT count(*) FROM role_permissions") == 2


async def test_devices_are_bound_to_exactly_their_listed_users_and_audited(
    db: asyncpg.Connection, tmp_path: Path
) -> None:
    await load_catalog_file(db, EXAMPLE_CATALOG)
    document = example()
    document["devices"][0]["users"] = ["rita.kowalski@northwind-fleet.example", "tom.hughes@northwind-fleet.example"]
    document["devices"][0]["description"] = "Moved to the crew room"
    audit = await db.fetchval("SELECT count(*) FROM audit_logs WHERE table_name IN ('devices', 'device_users')")
    await load_catalog_file(db, write(tmp_path, document))
    bound = await db.fetch(
        "SELECT u.email FROM device_users du JOIN users u ON u.id = du.user_id "
        "WHERE du.device_id = 'north-depot-scanner' ORDER BY u.email"
    )
    assert [r["email"] for r in bound] == [
        "rita.kowalski@northwind-fleet.example",
        "tom.hughes@northwind-fleet.example",
    ]
    changes = await db.fetch(
        "SELECT table_name, operation FROM audit_logs WHERE table_name IN ('devices', 'device_users') "
        "ORDER BY created_at, table_name, operation OFFSET $1",
        audit,
    )
    assert sorted((r["table_name"], r["operation"]) for r in changes) == [
        ("device_users", "DELETE"),  # sam.becker unbound
        ("device_users", "INSERT"),  # tom.hughes bound
        ("devices", "UPDATE"),  # the description
    ]
