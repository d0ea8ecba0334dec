"""``cloudwatcher check``: is this set-up able to run? One result per thing that can be wrong.

Each check is independent and reports rather than raises, so that one broken target does not
hide the state of the others. Nothing here changes the schema or leaves anything behind: the
database is only read, and each target gets a probe object that is written through its
provider (the same code path as an upload, so sign-in, permissions and the network are all
exercised) and removed again.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from cloudwatcher.config import Settings, TargetConfig
from cloudwatcher.providers.base import (
    Provider,
    ProviderError,
    QuotaExceededError,
    RemovesObjects,
    ReportsFreeSpace,
    UploadJob,
)
from cloudwatcher.providers.registry import build_provider
from cloudwatcher.schema import schema_problem, schema_version
from cloudwatcher.schema.sql import query

_SERVER_VERSION = query("database", "server_version")

__all__ = ["CheckResult", "probe", "run_checks"]

#: Below this much free space in the state directory (the embedded database, backups) check fails.
MIN_FREE_STATE_BYTES = 1024**3
#: The probe object's name, at the target's root: no device folder can hold it (device ids never
#: start with "."), and no folder is created that would outlive the probe.
PROBE_PREFIX = ".cloudwatcher-check-"
#: How long one target's probe may take before it counts as unreachable.
TARGET_TIMEOUT_SECONDS = 60.0
INOTIFY_WATCHES = Path("/proc/sys/fs/inotify/max_user_watches")


@dataclass(frozen=True)
class CheckResult:
    """One line of ``check``: what was checked, whether it passed, and why."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'✓' if self.ok else '✗'} {self.name}: {self.detail}"


async def run_checks(settings: Settings, config_source: str, database_url: Callable[[], str]) -> list[CheckResult]:
    """Every check, in the order a person fixes things: configuration, database, targets, disk."""
    results = [CheckResult("configuration", True, f"{config_source}, {len(settings.target_list)} target(s)")]
    results.append(await check_database(database_url))
    for target in settings.target_list:
        results.append(await check_target(target))
    results.append(await asyncio.to_thread(check_watch_root, settings))
    results.append(await asyncio.to_thread(check_state_disk, settings.state_dir))
    return results


async def check_database(database_url: Callable[[], str]) -> CheckResult:
    """Reachable, migrated by this version, and which server it is. Reads only."""
    try:
        url = await asyncio.to_thread(database_url)
        connection = await asyncpg.connect(url, timeout=15)
    except Exception as exc:  # any failure to reach it is this check's answer, never a crash
        return CheckResult("database", False, f"not reachable: {exc}")
    try:
        server = await connection.fetchval(_SERVER_VERSION)
        problem = await schema_problem(connection)
        version = await schema_version(connection)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        return CheckResult("database", False, f"cannot be read: {exc}")
    finally:
        await connection.close()
    if problem is not None:
        return CheckResult("database", False, f"PostgreSQL {server}; {problem}")
    return CheckResult("database", True, f"PostgreSQL {server}, schema at migration {version:04d}")


async def check_target(target: TargetConfig) -> CheckResult:
    """Sign in and write, then remove, a probe object through the target's provider."""
    name = f"target {target.name} ({target.provider})"
    try:
        provider = build_provider(target, concurrency=1)
    except Exception as exc:  # a provider that cannot even be built: its message is the reason
        return CheckResult(name, False, f"cannot be set up: {exc}")
    try:
        detail = await asyncio.wait_for(probe(provider), TARGET_TIMEOUT_SECONDS)
    except TimeoutError:
        return CheckResult(name, False, f"no answer within {TARGET_TIMEOUT_SECONDS:.0f} s")
    except ProviderError as exc:
        return CheckResult(name, False, f"not writable: {exc}{_storage_hint(target, exc)}")
    except Exception as exc:  # SDK errors the provider did not classify still name the target
        return CheckResult(name, False, f"{type(exc).__name__}: {exc}")
    finally:
        try:
            await provider.close()
        except Exception:  # closing is best effort; the probe's result is what matters
            pass
    return CheckResult(name, True, detail)


def _storage_hint(target: TargetConfig, error: ProviderError) -> str:
    """Why a Google Drive service account may have no room at all: it owns no storage of its own."""
    if not isinstance(error, QuotaExceededError) or target.provider != "google-drive":
        return ""
    if getattr(target, "service_account_file", None) is None:  # a user's OAuth consent: the user's own quota
        return ""
    if getattr(target, "shared_drive_id", None) or getattr(target, "impersonate", None):
        return ""
    return "; a service account without a shared drive (shared_drive_id) or impersonate has no storage quota of its own"


async def probe(provider: Provider, remote_path: str | None = None) -> str:
    """Write a small object through ``provider``, verified as an upload is, then remove it.

    Returns what was proven; raises the provider's error when the target cannot take it.
    """
    content = f"cloudwatcher check from {socket.gethostname()}\n".encode()
    remote_path = remote_path or f"{PROBE_PREFIX}{uuid.uuid4().hex}.txt"
    with tempfile.TemporaryDirectory(prefix="cloudwatcher-check-") as folder:
        local = Path(folder) / "probe.txt"
        local.write_bytes(content)
        job = UploadJob(
            local_file=local,
            remote_path=remote_path,
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            mtime_ns=local.stat().st_mtime_ns,
        )

        async def no_session(state: object) -> None:
            return None

        result = await provider.upload(job, no_session)
        await provider.flush()
    parts = [f"probe written and verified ({result.verification})"]
    if isinstance(provider, RemovesObjects):
        await provider.remove(remote_path)
        parts[0] = f"probe written, verified ({result.verification}) and removed"
    else:
        parts.append(f"this provider cannot remove it: delete {result.cloud_path} by hand")
    if isinstance(provider, ReportsFreeSpace):
        try:
            free = await provider.free_bytes()
        except ProviderError as exc:  # the probe went through; an unanswered quota question is no failure
            parts.append(f"free space unknown ({exc})")
        else:
            if free == 0:
                raise QuotaExceededError("the target reports no free space left")
            if free is not None:
                parts.append(f"{_size(free)} free")
    return "; ".join(parts)


def check_watch_root(settings: Settings) -> CheckResult:
    """The watch root exists and can be listed; in events mode, inotify can watch every folder."""
    root = settings.watch_path
    if not root.is_dir():
        return CheckResult("watch root", False, f"{root} does not exist or is not a folder")
    if not os.access(root, os.R_OK | os.X_OK):
        return CheckResult("watch root", False, f"{root} cannot be read by this user")
    folders = _count_folders(root)
    detail = f"{root}, {folders} folder(s)"
    if settings.watch_mode == "poll":
        return CheckResult("watch root", True, detail + "; polled (watch_mode = poll), inotify not used")
    try:
        limit = int(INOTIFY_WATCHES.read_text().strip())
    except (OSError, ValueError):
        return CheckResult("watch root", True, detail + "; inotify limit unknown (no /proc)")
    if folders >= limit:
        return CheckResult(
            "watch root",
            False,
            f"{detail}, more than fs.inotify.max_user_watches = {limit} allows; raise it "
            '(sysctl fs.inotify.max_user_watches) or set watch_mode = "poll"',
        )
    return CheckResult("watch root", True, f"{detail}, within fs.inotify.max_user_watches = {limit}")


def _count_folders(root: Path) -> int:
    """Folders under ``root`` (itself included), without following links; unreadable ones are skipped."""
    # os.walk lists a symlinked folder but does not enter it (followlinks=False): a device's
    # link cannot send the count elsewhere, and inotify would not watch through it either.
    return sum(1 for _ in os.walk(root, onerror=lambda error: None))


def check_state_disk(state_dir: Path) -> CheckResult:
    """Free space where the embedded database, backups and archives live."""
    folder = state_dir
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        usage = shutil.disk_usage(folder)
    except OSError as exc:
        return CheckResult("state disk", False, f"{state_dir}: {exc.strerror or exc}")
    detail = f"{state_dir}, {_size(usage.free)} free of {_size(usage.total)}"
    if usage.free < MIN_FREE_STATE_BYTES:
        return CheckResult("state disk", False, f"{detail}; needs at least {_size(MIN_FREE_STATE_BYTES)}")
    return CheckResult("state disk", True, detail)


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"
