"""``load_catalog_file``: reference data upserted on natural keys (docs/ledger-and-requests.md, Reference data).

Everything is validated first, then written in ONE transaction in dependency order (roles,
users, departments, user links, devices with their users, locations, suppliers, parts with variants and offers,
inventory). A data error raises :class:`CatalogError` naming the entry and the key, and the
transaction is rolled back, so nothing is loaded. Rows are compared before they are
written: loading the same file twice changes nothing and adds no audit rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import yaml
from pydantic import BaseModel, ValidationError

from cloudwatcher.domain.catalog_models import (
    SECTIONS,
    DepartmentEntry,
    DeviceEntry,
    InventoryEntry,
    LocationEntry,
    PartEntry,
    RoleEntry,
    SupplierEntry,
    UserEntry,
)
from cloudwatcher.domain.responses import to_json
from cloudwatcher.schema.sql import query

_VARIANT_ID = query("catalog", "variant_id")
_CHANGE_REASON = query("catalog", "change_reason")


class CatalogError(Exception):
    """A reference-data file that cannot be loaded; the message names the entry and the key."""


def _entry_label(section: str, index: int, entry: Any) -> str:
    key = SECTIONS[section][1]
    if isinstance(entry, dict) and isinstance(entry.get(key), str):
        return f"{section}[{index}] ({key} {entry[key]!r})"
    return f"{section}[{index}]"


def _read_document(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CatalogError(f"{path}: cannot read: {error}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise CatalogError(f"{path}: not valid YAML: {error}") from None
    else:
        try:
            document = json.loads(text)
        except ValueError as error:
            raise CatalogError(f"{path}: not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise CatalogError(f"{path}: the top level must be an object with sections {', '.join(SECTIONS)}")
    unknown = sorted(set(document) - set(SECTIONS))
    if unknown:
        raise CatalogError(f"{path}: unknown section(s) {', '.join(map(repr, unknown))}")
    return document


def parse_catalog(document: dict[str, Any]) -> dict[str, list[Any]]:
    """Validate every entry; the first problem becomes a CatalogError naming entry and key."""
    parsed: dict[str, list[Any]] = {}
    for section, (model, _) in SECTIONS.items():
        entries = document.get(section)
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise CatalogError(f"section {section!r} must be a list")
        parsed[section] = []
        for index, entry in enumerate(entries):
            try:
                parsed[section].append(model.model_validate(entry))
            except ValidationError as error:
                problem = error.errors()[0]
                key = ".".join(str(step) for step in problem["loc"]) or "(entry)"
                raise CatalogError(f"{_entry_label(section, index, entry)}: key {key!r}: {problem['msg']}") from None
    return parsed


class _Loader:
    """Upserts for one transaction; compares before writing so that a no-op writes nothing."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def upsert(
        self, table: str, keys: dict[str, Any], values: dict[str, Any], touch: str | None = "updated_at"
    ) -> UUID:
        """Insert the row, or update the given ``values`` that differ; ``None`` values are left alone."""
        values = {column: value for column, value in values.items() if value is not None}
        where = " AND ".join(f"{column} IS NOT DISTINCT FROM ${i}" for i, column in enumerate(keys, start=1))
        columns = ", ".join(["id", *values]) if values else "id"
        row = await self.connection.fetchrow(f"SELECT {columns} FROM {table} WHERE {where}", *keys.values())
        if row is None:
            names = [*keys, *values]
            params = ", ".join(f"${i}" + ("::jsonb" if name == "attributes" else "") for i, name in enumerate(names, 1))
            arguments = [*keys.values(), *(to_json(v) if k == "attributes" else v for k, v in values.items())]
            inserted: UUID = await self.connection.fetchval(
                f"INSERT INTO {table} ({', '.join(names)}) VALUES ({params}) RETURNING id", *arguments
            )
            return inserted
        changed = {column: value for column, value in values.items() if not _same(column, row[column], value)}
        if changed:
            sets = [
                f"{column} = ${i}" + ("::jsonb" if column == "attributes" else "")
                for i, column in enumerate(changed, 2)
            ]
            if touch:
                sets.append(f"{touch} = now()")
            arguments = [to_json(v) if k == "attributes" else v for k, v in changed.items()]
            await self.connection.execute(f"UPDATE {table} SET {', '.join(sets)} WHERE id = $1", row["id"], *arguments)
        identifier: UUID = row["id"]
        return identifier

    async def sync_set(self, table: str, owner: str, owner_id: UUID | str, member: str, wanted: set[Any]) -> None:
        """Make the owner's links exactly ``wanted`` (permissions of a role, roles of a user...)."""
        current = {
            row[0] for row in await self.connection.fetch(f"SELECT {member} FROM {table} WHERE {owner} = $1", owner_id)
        }
        for value in wanted - current:
            await self.connection.execute(f"INSERT INTO {table} ({owner}, {member}) VALUES ($1, $2)", owner_id, value)
        if current - wanted:
            await self.connection.execute(
                f"DELETE FROM {table} WHERE {owner} = $1 AND {member} = ANY($2)",
                owner_id,
                list(current - wanted),
            )

    async def lookup(self, table: str, column: str, value: Any, label: str, key: str) -> UUID:
        found: UUID | None = await self.connection.fetchval(f"SELECT id FROM {table} WHERE {column} = $1", value)
        if found is None:
            raise CatalogError(f"{label}: key {key!r}: unknown {table.rstrip('s')} {value!r}")
        return found


def _same(column: str, current: Any, wanted: Any) -> bool:
    if column == "attributes" and isinstance(current, str):
        current = json.loads(current)
    return bool(current == wanted)


def _label(section: str, index: int, entry: BaseModel) -> str:
    key = SECTIONS[section][1]
    return f"{section}[{index}] ({key} {getattr(entry, key)!r})"


def _check_department_cycles(departments: list[DepartmentEntry]) -> None:
    parents = {entry.name: entry.parent for entry in departments}
    for index, entry in enumerate(departments):
        seen = {entry.name}
        current = entry.parent
        while current is not None and current in parents:
            if current in seen:
                raise CatalogError(
                    f"{_label('departments', index, entry)}: key 'parent': the department tree has a cycle"
                )
            seen.add(current)
            current = parents[current]


async def _load(loader: _Loader, catalog: dict[str, list[Any]]) -> None:
    roles: list[RoleEntry] = catalog.get("roles", [])
    for role in roles:
        role_id = await loader.upsert("roles", {"name": role.name}, {"description": role.description})
        if role.permissions is not None:
            await loader.sync_set("role_permissions", "role_id", role_id, "permission", set(role.permissions))

    users: list[UserEntry] = catalog.get("users", [])
    user_ids = [
        await loader.upsert("users", {"email": user.email}, {"name": user.name, "is_active": user.is_active})
        for user in users
    ]

    departments: list[DepartmentEntry] = catalog.get("departments", [])
    _check_department_cycles(departments)
    department_ids: list[UUID] = []
    for index, department in enumerate(departments):
        label = _label("departments", index, department)
        manager = (
            await loader.lookup("users", "email", department.manager, label, "manager") if department.manager else None
        )
        values: dict[str, Any] = {"description": department.description, "manager_id": manager}
        department_ids.append(await loader.upsert("departments", {"name": department.name}, values))
    for index, (department, department_id) in enumerate(zip(departments, department_ids, strict=True)):
        if department.parent is not None:
            label = _label("departments", index, department)
            parent = await loader.lookup("departments", "name", department.parent, label, "parent")
            if parent == department_id:
                raise CatalogError(f"{label}: key 'parent': a department cannot be its own parent")
            await loader.upsert("departments", {"id": department_id}, {"parent_id": parent})

    for index, (user, user_id) in enumerate(zip(users, user_ids, strict=True)):
        label = _label("users", index, user)
        if user.roles is not None:
            wanted = {await loader.lookup("roles", "name", name, label, "roles") for name in user.roles}
            await loader.sync_set("user_roles", "user_id", user_id, "role_id", wanted)
        if user.departments is not None:
            wanted = {
                await loader.lookup("departments", "name", name, label, "departments") for name in user.departments
            }
            await loader.sync_set("user_departments", "user_id", user_id, "dept_id", wanted)

    await _load_devices(loader, catalog.get("devices", []))

    locations: list[LocationEntry] = catalog.get("locations", [])
    for index, location_entry in enumerate(locations):
        dept = await loader.lookup(
            "departments",
            "name",
            location_entry.department,
            _label("locations", index, location_entry),
            "department",
        )
        values = {
            "dept_id": dept,
            "location_type": location_entry.location_type,
            "address": location_entry.address,
        }
        await loader.upsert("locations", {"name": location_entry.name}, values)

    suppliers: list[SupplierEntry] = catalog.get("suppliers", [])
    for supplier in suppliers:
        values = supplier.model_dump(exclude={"name"})
        await loader.upsert("suppliers", {"name": supplier.name}, values)

    parts: list[PartEntry] = catalog.get("parts", [])
    for index, part_entry in enumerate(parts):
        await _load_part(loader, _label("parts", index, part_entry), part_entry)

    stock: list[InventoryEntry] = catalog.get("inventory", [])
    for index, item in enumerate(stock):
        label = _label("inventory", index, item)
        location = await loader.lookup("locations", "name", item.location, label, "location")
        part = await loader.lookup("parts", "part_code", item.part_code, label, "part_code")
        variant = await _variant(loader, part, item.variant_code, label, "variant_code")
        values = {
            "quantity_on_hand": item.quantity_on_hand,
            "reorder_point": item.reorder_point,
            "reorder_quantity": item.reorder_quantity,
        }
        keys = {"part_id": part, "variant_id": variant, "location_id": location}
        await loader.upsert("inventory", keys, values, touch="last_updated_at")


async def _load_devices(loader: _Loader, devices: list[DeviceEntry]) -> None:
    """Bind each device to exactly the users listed for it (users come earlier in the file order)."""
    seen: set[str] = set()
    for index, device in enumerate(devices):
        label = _label("devices", index, device)
        if device.id in seen:  # the later entry would undo the earlier one on every load
            raise CatalogError(f"{label}: key 'id': device {device.id!r} is listed more than once")
        seen.add(device.id)
        await loader.upsert("devices", {"device_id": device.id}, {"description": device.description})
        wanted = {await loader.lookup("users", "email", user, label, "users") for user in device.users}
        await loader.sync_set("device_users", "device_id", device.id, "user_id", wanted)


async def _variant(loader: _Loader, part_id: UUID, code: str | None, label: str, key: str) -> UUID | None:
    if code is None:
        return None
    found: UUID | None = await loader.connection.fetchval(_VARIANT_ID, part_id, code)
    if found is None:
        raise CatalogError(f"{label}: key {key!r}: unknown variant {code!r}")
    return found


async def _load_part(loader: _Loader, label: str, entry: PartEntry) -> None:
    values = entry.model_dump(include={"name", "description", "category", "unit_of_measure"})
    part_id = await loader.upsert("parts", {"part_code": entry.part_code}, values)
    for variant in entry.variants:
        await loader.upsert(
            "part_variants",
            {"part_id": part_id, "variant_code": variant.variant_code},
            variant.model_dump(exclude={"variant_code"}),
        )
    for position, offer in enumerate(entry.suppliers):
        where = f"suppliers.{position}"
        supplier = await loader.lookup("suppliers", "name", offer.supplier, label, f"{where}.supplier")
        variant_id = await _variant(loader, part_id, offer.variant_code, label, f"{where}.variant_code")
        keys = {"part_id": part_id, "variant_id": variant_id, "supplier_id": supplier}
        await loader.upsert("part_suppliers", keys, offer.model_dump(exclude={"supplier", "variant_code"}))


async def load_catalog_file(connection: asyncpg.Connection, path: Path) -> dict[str, int]:
    """Load ``path``; returns the number of entries per section present in the file."""
    catalog = parse_catalog(_read_document(path))
    try:
        async with connection.transaction():
            await connection.execute(_CHANGE_REASON, f"catalog load: {path.name}")
            await _load(_Loader(connection), catalog)
    except asyncpg.PostgresError as error:  # a constraint the models cannot see; nothing was loaded
        raise CatalogError(f"{path}: rejected by the database: {error}") from None
    return {section: len(entries) for section, entries in catalog.items()}
