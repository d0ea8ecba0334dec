"""Parametrise the conformance suite over every provider harness."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.providers.harness import ProviderHarness

# One entry per provider; a new provider adds its harness module here and nothing else.
HARNESS_MODULES = [
    "tests.providers.harness_local",
    "tests.providers.harness_sharepoint",
    "tests.providers.harness_gdrive",
    "tests.providers.harness_s3",
]


@pytest.fixture(params=HARNESS_MODULES, ids=lambda name: name.rsplit("_", 1)[-1])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ProviderHarness]:
    module = importlib.import_module(request.param)
    with module.make_harness(tmp_path) as built:
        yield built
