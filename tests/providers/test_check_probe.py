"""``cloudwatcher check``'s probe through every provider: written, verified, and gone afterwards."""

from __future__ import annotations

import pytest

from cloudwatcher.cli.checks import probe
from cloudwatcher.providers.base import ProviderError, RemovesObjects
from tests.providers.harness import ProviderHarness


async def test_the_probe_object_is_written_verified_and_removed(harness: ProviderHarness) -> None:
    provider = harness.provider
    assert isinstance(provider, RemovesObjects)
    detail = await probe(provider, ".cloudwatcher-check-test.txt")
    assert "removed" in detail
    assert await provider.stat(".cloudwatcher-check-test.txt") is None


async def test_removing_an_object_that_is_not_there_is_not_an_error(harness: ProviderHarness) -> None:
    provider = harness.provider
    assert isinstance(provider, RemovesObjects)
    await provider.remove("truck-1/requests/never-uploaded.bin")
    assert await provider.stat("truck-1/requests/never-uploaded.bin") is None


async def test_a_failing_probe_raises_the_providers_error(harness: ProviderHarness) -> None:
    with harness.fault("permanent"), pytest.raises(ProviderError):
        await probe(harness.provider, ".cloudwatcher-check-refused.txt")
