"""Google Drive in the conformance suite: the real SDK against the loopback Drive emulator."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cloudwatcher.config import GoogleDriveTarget
from cloudwatcher.providers.google_drive import CHUNK_GRANULARITY, GoogleDriveProvider
from tests.providers.harness import EVERY_PROVIDER_FAULTS, THROTTLE_SECONDS, FaultKind, ProviderHarness, Sessions
from tests.support.emulators.drive import DriveEmulator
from tests.support.emulators.fixtures import google_drive_settings

#: The smallest legal chunk keeps multi-chunk cases small; production uses 8 MiB.
CHUNK_SIZE = CHUNK_GRANULARITY


def drive_target(emulator: DriveEmulator, **overrides: Any) -> GoogleDriveTarget:
    """A target pointing at ``emulator``; the request rate is raised so tests are not paced."""
    return GoogleDriveTarget.model_validate(google_drive_settings(emulator, **overrides))


def unfinished(emulator: DriveEmulator) -> int:
    """Upload sessions not yet complete (Drive keeps a finished one to answer for its file)."""
    return sum(1 for session in emulator.sessions.values() if session.done_file is None)


@contextlib.contextmanager
def make_harness(tmp_path: Path) -> Iterator[ProviderHarness]:
    with DriveEmulator(tmp_path) as emulator:
        provider = GoogleDriveProvider(drive_target(emulator), concurrency=4, chunk_size=CHUNK_SIZE)

        @contextlib.contextmanager
        def fault(kind: FaultKind) -> Iterator[None]:
            if kind == "transient":
                emulator.fail_next(503, "backendError", "Backend Error")
            elif kind == "permanent":
                emulator.fail_next(
                    403,
                    "insufficientFilePermissions",
                    "The user does not have sufficient permissions for this file.",
                )
            elif kind == "throttled":
                emulator.rate_limit(retry_after=THROTTLE_SECONDS)
            elif kind == "quota":
                emulator.storage_quota_exceeded()
            else:
                emulator.corrupt_next_md5()
            yield

        try:
            yield ProviderHarness(
                provider=provider,
                fault=fault,
                chunk_size=CHUNK_SIZE,
                faults=EVERY_PROVIDER_FAULTS | {"throttled", "quota"},
                sessions=Sessions(open=lambda: unfinished(emulator), expire=emulator.expire_sessions),
            )
        finally:
            asyncio.run(provider.close())
