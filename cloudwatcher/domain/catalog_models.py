"""The reference-data file of ``cloudwatcher load`` (docs/ledger-and-requests.md, Reference data), as strict models.

Optional keys left out of an entry are left alone in the database (``None`` below means "not
given"); lists of roles, departments and permissions, when given, are the complete set.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Name = Annotated[str, Field(min_length=1, max_length=255)]
Code = Annotated[str, Field(min_length=1, max_length=50)]
Days = Annotated[int, Field(ge=0, le=3650)]
Money = Annotated[Decimal, Field(ge=0, le=Decimal("99999999.99"), decimal_places=2)]
Stock = Annotated[int, Field(ge=0, le=1_000_000_000)]
Permission = Annotated[str, Field(pattern=r"^[a-z][a-z_]*\.[a-z][a-z_]*$", max_length=100)]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RoleEntry(_Entry):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    description: str | None = None
    permissions: list[Permission] | None = None


class DepartmentEntry(_Entry):
    name: Name
    parent: Name | None = None
    manager: Name | None = None
    description: str | None = None


class UserEntry(_Entry):
    email: Email
    name: Name
    roles: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = None
    departments: list[Name] | None = None
    is_active: bool | None = None


Email = Annotated[str, Field(min_length=3, max_length=255, pattern=r"^[^@\s]+@[^@\s]+$")]
# The folder name a device drops into (see the README, "Folder layout").
DeviceId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$")]


class DeviceEntry(_Entry):
    """A device bound to the users it may act for; ``users`` is the complete set."""

    id: DeviceId
    users: list[Email]
    description: str | None = None


class LocationEntry(_Entry):
    name: Name
    department: Name
    location_type: Literal["warehouse", "store", "garage", "depot", "vehicle", "site"] | None = None
    address: str | None = None


class SupplierEntry(_Entry):
    name: Name
    contact_email: Annotated[str, Field(max_length=255)] | None = None
    lead_time_days: Days | None = None
    is_preferred: bool | None = None
    is_active: bool | None = None


class VariantEntry(_Entry):
    variant_code: Code
    variant_name: Name | None = None
    attributes: dict[str, Any] | None = None
    cost_per_unit: Money | None = None
    retail_price: Money | None = None


class OfferEntry(_Entry):
    supplier: Name
    variant_code: Code | None = None
    sku: Annotated[str, Field(max_length=100)] | None = None
    supplier_cost: Money
    lead_time_days: Days | None = None
    minimum_order_qty: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    is_preferred: bool | None = None


class PartEntry(_Entry):
    part_code: Code
    name: Name
    description: str | None = None
    category: Annotated[str, Field(max_length=100)] | None = None
    unit_of_measure: Annotated[str, Field(min_length=1, max_length=20)] | None = None
    variants: list[VariantEntry] = []
    suppliers: list[OfferEntry] = []


class InventoryEntry(_Entry):
    location: Name
    part_code: Code
    variant_code: Code | None = None
    quantity_on_hand: Stock
    reorder_point: Stock | None = None
    reorder_quantity: Stock | None = None


SECTIONS: dict[str, tuple[type[_Entry], str]] = {
    # section -> (entry model, the key that names an entry in error messages)
    "roles": (RoleEntry, "name"),
    "departments": (DepartmentEntry, "name"),
    "users": (UserEntry, "email"),
    "devices": (DeviceEntry, "id"),
    "locations": (LocationEntry, "name"),
    "suppliers": (SupplierEntry, "name"),
    "parts": (PartEntry, "part_code"),
    "inventory": (InventoryEntry, "part_code"),
}
