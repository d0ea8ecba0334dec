"""The local provider in the conformance suite: a mirror folder under the test's tmp_path."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

from cloudwatcher.config import LocalTarget
from cloudwatcher.providers.local.provider import LocalProvider
from tests.providers.harness import FaultKind, ProviderHarness


@contextlib.contextmanager
def make_harness(tmp_path: Path) -> Iterator[ProviderHarness]:
    root = tmp_path / "mirror"
    provider = LocalProvider(LocalTarget(name="local", provider="local", root=root))

    @contextlib.contextmanager
    def fault(kind: FaultKind) -> Iterator[None]:
        if kind == "transient":
            # A file where the mirror root should be: every write fails with an OSError until
            # it is removed (tests run as root, so permissions cannot stand in for this).
            if root.exists():
                shutil.rmtree(root)
            root.write_bytes(b"")
            try:
                yield
            finally:
                root.unlink()
        elif kind == "permanent":
            # The local analogue of a refused name: a path that would leave the mirror root.
            with mock.patch.object(provider, "remote_name", lambda path: f"../escape/{path}"):
                original = provider._destination_str
                with mock.patch.object(provider, "_destination_str", lambda path: original(f"../{path}")):
                    yield
        else:
            with mock.patch("cloudwatcher.providers.local.provider._copy_and_hash", return_value="0" * 64):
                yield

    yield ProviderHarness(provider=provider, fault=fault, chunk_size=None)
