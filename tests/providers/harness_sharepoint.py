"""The SharePoint provider in the conformance suite: the real SDK against the Graph emulator."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

from cloudwatcher.config import SharePointTarget
from cloudwatcher.providers.sharepoint import FRAGMENT_SIZE, SharePointProvider
from tests.providers.harness import EVERY_PROVIDER_FAULTS, THROTTLE_SECONDS, FaultKind, ProviderHarness, Sessions
from tests.support.emulators.fixtures import sharepoint_settings
from tests.support.emulators.graph import GraphEmulator


def target_for(emulator: GraphEmulator, *, root: str = "CloudWatcher", site: bool = False) -> SharePointTarget:
    """A target configured exactly as an operator would, pointing at the emulator."""
    return SharePointTarget.model_validate(sharepoint_settings(emulator, root=root, site=site))


@contextlib.contextmanager
def make_harness(tmp_path: Path) -> Iterator[ProviderHarness]:
    with GraphEmulator(tmp_path) as emulator:
        provider = SharePointProvider(target_for(emulator), concurrency=2)

        @contextlib.contextmanager
        def fault(kind: FaultKind) -> Iterator[None]:
            if kind == "transient":
                emulator.fail_next(503, "serviceNotAvailable", retry_after=1)
            elif kind == "permanent":
                emulator.fail_next(403, "accessDenied", count=1000)
            elif kind == "throttled":
                emulator.fail_next(429, "tooManyRequests", retry_after=THROTTLE_SECONDS)
            elif kind == "quota":
                emulator.fail_next(507, "insufficientStorage")
            else:
                emulator.report_wrong_hash(count=1000)
            try:
                yield
            finally:
                emulator.clear_faults()

        try:
            yield ProviderHarness(
                provider=provider,
                fault=fault,
                chunk_size=FRAGMENT_SIZE,
                forbidden_name="bad:name?.txt",
                mismatch_is_server_modified=True,
                faults=EVERY_PROVIDER_FAULTS | {"throttled", "quota"},
                sessions=Sessions(open=lambda: len(emulator.sessions), expire=emulator.expire_sessions),
            )
        finally:
            _close(provider)


def _close(provider: SharePointProvider) -> None:
    """Best-effort close after the test's event loop has finished with the provider.

    The conformance fixture is synchronous, so the provider is closed on a fresh loop;
    connections bound to the test's (finished) loop may refuse, which must not fail a test.
    """
    with contextlib.suppress(Exception):
        asyncio.run(provider.close())
