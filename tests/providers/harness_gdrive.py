"""Google Drive in the conformance suite: the real SDK against the loopback Drive emulator."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

from cloudwatcher.config import GoogleDriveTarget
from cloudwatcher.providers.google_drive import CHUNK_GRANULARITY, GoogleDriveProvider
from tests.providers.harness import FaultKind, ProviderHarness
from tests.support.emulators.drive import DriveEmulator
from tests.support.emulators.fixtures import google_drive_settings

#: The smallest legal chunk keeps multi-chunk cases small; production uses 8 MiB.
CHUNK_SIZE = CHUNK_GRANULARITY


def drive_target(emulator: DriveEmulator, **overrides: object) -> GoogleDriveTarget:
    """A target pointing at ``emulator``; the request rate is raised so tests are not paced."""
    return GoogleDriveTarget.model_validate(google_drive_settings(emulator, **overrides))


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
            else:
                emulator.corrupt_next_md5()
            yield

        try:
            yield ProviderHarness(provider=provider, fault=fault, chunk_size=CHUNK_SIZE)
        finally:
            asyncio.run(provider.close())
