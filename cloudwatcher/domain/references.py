"""Natural keys in payloads (``part_code`` + optional ``variant_code``) resolved to row ids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from cloudwatcher.domain.errors import RequestError
from cloudwatcher.schema.sql import query

_RESOLVE_PARTS = query("inventory", "resolve_parts")


@dataclass(frozen=True)
class PartRef:
    part_id: UUID
    variant_id: UUID | None
    part_code: str
    variant_code: str | None

    @property
    def key(self) -> tuple[UUID, UUID | None]:
        return (self.part_id, self.variant_id)

    @property
    def label(self) -> str:
        return self.part_code if self.variant_code is None else f"{self.part_code}/{self.variant_code}"


async def resolve_parts(connection: asyncpg.Connection, keys: Sequence[tuple[str, str | None]]) -> list[PartRef]:
    """One query for all lines; ``not_found`` names the first unknown part or variant."""
    rows = await connection.fetch(_RESOLVE_PARTS, [code for code, _ in keys], [variant for _, variant in keys])
    refs: list[PartRef] = []
    for row in rows:
        if row["part_id"] is None:
            raise RequestError("not_found", f"no part with part_code {row['part_code']!r}")
        if row["variant_code"] is not None and row["variant_id"] is None:
            raise RequestError("not_found", f"part {row['part_code']!r} has no variant {row['variant_code']!r}")
        refs.append(PartRef(row["part_id"], row["variant_id"], row["part_code"], row["variant_code"]))
    return refs


def reject_repeated_lines(refs: Sequence[PartRef], what: str) -> None:
    """A part listed twice in one count or order is ambiguous; say so instead of guessing."""
    seen: set[tuple[UUID, UUID | None]] = set()
    for ref in refs:
        if ref.key in seen:
            raise RequestError("invalid_request", f"{what} lists {ref.label} more than once")
        seen.add(ref.key)
