"""Remote names decided once per local path, against the real database (daemon/naming.py)."""

from __future__ import annotations

import asyncio
import hashlib
from typing import cast

import asyncpg
import pytest

from cloudwatcher.daemon.ledger.store import FileVersion, Ledger
from cloudwatcher.daemon.upload.remote_names import RemoteNames, with_number
from cloudwatcher.providers.base import Provider


class CaseInsensitiveProvider:
    """Just enough of a provider: SharePoint-like names (``?`` becomes its full-width form)."""

    name = "cloud"
    case_insensitive = True
    renames_paths = True

    def remote_name(self, remote_path: str) -> str:
        return remote_path.replace("?", "\uff1f")


class CaseSensitiveProvider(CaseInsensitiveProvider):
    case_insensitive = False


class PlainProvider(CaseSensitiveProvider):
    """Case-sensitive and renaming nothing (local, S3, Drive)."""

    renames_paths = False

    def remote_name(self, remote_path: str) -> str:
        return remote_path


async def record(pool: asyncpg.Pool, *names: str) -> None:
    """Record each file for target 'cloud', one transaction each, in the given order."""
    for name in names:
        version = FileVersion(
            f"dev/requests/{name}", "dev", "attachment", hashlib.sha256(name.encode()).hexdigest(), 1, 1
        )
        await Ledger(pool).record([("cloud", "sharepoint", version)])


def names(pool: asyncpg.Pool, provider: CaseInsensitiveProvider | None = None) -> RemoteNames:
    # RemoteNames reads only the naming attributes, which is all these stand-ins have of a Provider.
    return RemoteNames(pool, "cloud", cast(Provider, provider or CaseInsensitiveProvider()), "sharepoint")


@pytest.mark.parametrize(
    ("path", "number", "expected"),
    [
        ("dev/requests/a.txt", 2, "dev/requests/a (2).txt"),
        ("dev/requests/archive.tar.gz", 3, "dev/requests/archive.tar (3).gz"),
        ("dev/requests/README", 2, "dev/requests/README (2)"),
        ("dev/requests/dir.d/file", 2, "dev/requests/dir.d/file (2)"),
        ("a.txt", 2, "a (2).txt"),
    ],
)
def test_the_number_goes_before_the_extension(path: str, number: int, expected: str) -> None:
    assert with_number(path, number) == expected


async def test_the_case_variant_recorded_later_gets_the_suffix_whichever_is_asked_first(pool: asyncpg.Pool) -> None:
    await record(pool, "Report.txt", "report.txt")
    assert await names(pool).remote_path("dev/requests/report.txt") == "dev/requests/report (2).txt"
    assert await names(pool).remote_path("dev/requests/Report.txt") == "dev/requests/Report.txt"


async def test_a_decision_is_kept_across_restarts(pool: asyncpg.Pool) -> None:
    await record(pool, "A.txt", "a.txt")
    first = {p: await names(pool).remote_path(f"dev/requests/{p}") for p in ("a.txt", "A.txt")}
    await pool.execute(
        "UPDATE cloud_file_refs SET created_at = now() - interval '1 day' WHERE local_path LIKE '%/a.txt'"
    )
    again = {p: await names(pool).remote_path(f"dev/requests/{p}") for p in ("A.txt", "a.txt")}
    assert first == again == {"a.txt": "dev/requests/a (2).txt", "A.txt": "dev/requests/A.txt"}


async def test_a_taken_suffix_is_skipped(pool: asyncpg.Pool) -> None:
    await record(pool, "a (2).txt", "a.txt", "A.txt")
    assert await names(pool).remote_path("dev/requests/a (2).txt") == "dev/requests/a (2).txt"
    assert await names(pool).remote_path("dev/requests/a.txt") == "dev/requests/a.txt"
    assert await names(pool).remote_path("dev/requests/A.txt") == "dev/requests/A (3).txt"


async def test_names_the_renaming_rule_merges_collide_too(pool: asyncpg.Pool) -> None:
    await record(pool, "what?.txt", "what\uff1f.txt")
    assert await names(pool).remote_path("dev/requests/what?.txt") == "dev/requests/what?.txt"
    assert await names(pool).remote_path("dev/requests/what\uff1f.txt") == "dev/requests/what\uff1f (2).txt"


async def test_a_case_sensitive_provider_keeps_case_variants_apart(pool: asyncpg.Pool) -> None:
    await record(pool, "A.txt", "a.txt")
    provider = CaseSensitiveProvider()
    assert await names(pool, provider).remote_path("dev/requests/a.txt") == "dev/requests/a.txt"
    assert await names(pool, provider).remote_path("dev/requests/A.txt") == "dev/requests/A.txt"


async def test_two_daemons_naming_at_once_never_share_a_remote_name(pool: asyncpg.Pool) -> None:
    variants = ["x.txt", "X.txt", "x.TXT", "X.TXT"]
    await record(pool, *variants)
    daemons = [names(pool), names(pool)]
    decided = await asyncio.gather(
        *(daemons[i % 2].remote_path(f"dev/requests/{v}") for i, v in enumerate(variants * 2))
    )
    by_path = dict(zip([f"dev/requests/{v}" for v in variants * 2], decided, strict=True))
    assert len({p.casefold() for p in by_path.values()}) == 4
    assert by_path["dev/requests/x.txt"] == "dev/requests/x.txt"  # recorded first
    rows = await pool.fetch("SELECT local_path, remote_path FROM remote_names")
    assert {r["local_path"]: r["remote_path"] for r in rows} == by_path


async def test_a_provider_that_renames_nothing_keeps_every_path_without_a_lookup(pool: asyncpg.Pool) -> None:
    names = RemoteNames(pool, "plain", PlainProvider(), "local")  # type: ignore[arg-type]
    assert await names.remote_path("dev/requests/A.txt") == "dev/requests/A.txt"
    assert await names.remote_path("dev/requests/a.txt") == "dev/requests/a.txt"
    assert await pool.fetchval("SELECT count(*) FROM remote_names") == 0
