"""Remote names that never collide (docs/providers.md, Names).

Two local names can land on one remote file: SharePoint compares names case-insensitively
(``A.txt`` and ``a.txt``), and a provider's renaming rule can merge names (``a:b`` and its
full-width twin on SharePoint). Without care the later upload silently replaces the earlier file.

Each local path gets its remote path once, before its first upload, in the ``remote_names``
table: the plain path when its *collision key* (the provider's name for it, case-folded on a
case-insensitive provider) is free on that target, else the first free ``name (2).ext``,
``name (3).ext``... The decision is kept, so every later version of the file goes to the same
remote name, across restarts and daemons; the unique key in the table makes two daemons racing
on one name agree. Case variants are named in the order they were recorded, so the one
recorded later is the one that gets the suffix.
"""

from __future__ import annotations

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from cloudwatcher.daemon.jobs.cluster import lock_key
from cloudwatcher.providers import PermanentError, Provider
from cloudwatcher.schema import queries

__all__ = ["RemoteNames", "collision_key", "with_number"]

_MAX_NUMBER = 1000
Connection = asyncpg.Connection | PoolConnectionProxy
_CACHE_LIMIT = 100_000


def with_number(path: str, number: int) -> str:
    """``dev/requests/a.txt`` → ``dev/requests/a (2).txt``: the number goes before the extension."""
    folder, slash, name = path.rpartition("/")
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:  # no extension (or a name like ".profile")
        stem, dot, extension = name, "", ""
    return f"{folder}{slash}{stem} ({number}){dot}{extension}"


def collision_key(provider: Provider, path: str) -> str:
    """What makes two paths one remote file on ``provider``."""
    name = provider.remote_name(path)
    return name.casefold() if provider.case_insensitive else name


class RemoteNames:
    """The remote path of each local path of one target, decided once and remembered."""

    def __init__(self, pool: asyncpg.Pool, target: str, provider: Provider, provider_tag: str) -> None:
        self.pool = pool
        self.target = target
        self.provider = provider
        #: The target's ``provider`` key, as its ledger rows record it (``cloud_provider``).
        self.provider_tag = provider_tag
        self._known: dict[str, str] = {}

    @property
    def identical(self) -> bool:
        """Every local path is its own remote path: distinct local paths stay distinct remotely."""
        return not self.provider.case_insensitive and not self.provider.renames_paths

    async def remote_path(self, local_path: str) -> str:
        """The path (relative to the target root) that ``local_path`` is uploaded to."""
        if self.identical:
            return local_path  # nothing to decide
        known = self._known.get(local_path)
        if known is not None:
            return known
        async with self.pool.acquire() as connection:
            if self.provider.case_insensitive:
                found = await connection.fetchval(queries.REMOTE_NAME_OF, self.target, local_path)
                if found is None:
                    found = await self._decide(connection, local_path)
            else:
                # No case variants to order: the unique keys alone settle it, in one statement
                # for a new path (or two for one decided before).
                found = await self._claim(connection, local_path)
        if len(self._known) >= _CACHE_LIMIT:
            self._known.clear()
        self._known[local_path] = found
        return str(found)

    async def _decide(self, connection: Connection, local_path: str) -> str:
        """Name ``local_path`` (and the case variants recorded before it), under a per-target lock."""
        async with connection.transaction():
            await connection.execute(queries.XACT_LOCK, lock_key(f"remote-names:{self.target}"))
            variants = [local_path]
            if self.provider.case_insensitive:
                rows = await connection.fetch(queries.CASE_VARIANTS, self.target, local_path, self.provider_tag)
                earlier = [row["local_path"] for row in rows]
                if local_path in earlier:
                    variants = earlier[: earlier.index(local_path) + 1]
            decided = ""
            for path in variants:
                decided = await connection.fetchval(queries.REMOTE_NAME_OF, self.target, path) or await self._claim(
                    connection, path
                )
            return decided

    async def _claim(self, connection: Connection, local_path: str) -> str:
        for number in range(1, _MAX_NUMBER + 1):
            candidate = local_path if number == 1 else with_number(local_path, number)
            claimed = await connection.fetchval(
                queries.CLAIM_REMOTE_NAME,
                self.target,
                local_path,
                candidate,
                collision_key(self.provider, candidate),
            )
            if claimed is not None:
                return str(claimed)
            mine = await connection.fetchval(queries.REMOTE_NAME_OF, self.target, local_path)
            if mine is not None:  # decided meanwhile by another daemon
                return str(mine)
        raise PermanentError(f"no free remote name for {local_path}: {_MAX_NUMBER} variants are taken")
