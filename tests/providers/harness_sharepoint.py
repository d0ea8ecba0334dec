"""The SharePoint provider in the conformance suite: the real SDK against the Graph emulator."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

from pydantic import SecretStr

from cloudwatcher.config import SharePointTarget
from cloudwatcher.providers.sharepoint import FRAGMENT_SIZE, SharePointProvider
from tests.emulators.graph import GraphEmulator
from tests.providers.harness import FaultKind, ProviderHarness


def target_for(emulator: GraphEmulator, *, root: str = "CloudWatcher", site: bool = False) -> SharePointTarget:
    """A target configured exactly as an operator would, pointing at the emulator."""
    return SharePointTarget(
        name="sharepoint",
        provider="sharepoint",
        tenant_id=emulator.tenant_id,
        client_id=emulator.client_id,
        client_secret=SecretStr(emulator.client_secret),
        drive_id=None if site else emulator.drive_id,
        site_id=emulator.site_id if site else None,
        root=root,
        graph_url=emulator.graph_url,
        authority_url=emulator.authority_url,
        ca_bundle=emulator.ca_pem,
    )


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
            else:
                emulator.report_wrong_hash(count=1000)
            try:
                yield
            finally:
                emulator.clear_faults()

        try:
            yield ProviderHarness(
                provider=provider, fault=fault, chunk_size=FRAGMENT_SIZE, forbidden_name="bad:name?.txt"
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
