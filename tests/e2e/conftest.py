"""Cloud emulators for daemon subprocess tests.

Each fixture starts one emulator in this test's ``tmp_path`` (the moto server is shared by the
process; each test gets its own bucket). The target settings that point a daemon at them come
from :mod:`tests.support.emulators.fixtures`, the same builders the provider harnesses use.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.emulators.drive import DriveEmulator
from tests.support.emulators.graph import GraphEmulator
from tests.support.emulators.s3 import AWS_TEST_ENVIRONMENT, fresh_bucket


def _workdir(tmp_path: Path, name: str) -> Path:
    """A folder of the emulator's own, so its files never mix with the daemon's."""
    workdir = tmp_path / name
    workdir.mkdir()
    return workdir


@pytest.fixture
def graph_emulator(tmp_path: Path) -> Iterator[GraphEmulator]:
    """The Microsoft Graph + token emulator over HTTPS; its CA is ``graph_emulator.ca_pem``."""
    with GraphEmulator(_workdir(tmp_path, "graph-emulator")) as emulator:
        yield emulator


@pytest.fixture
def drive_emulator(tmp_path: Path) -> Iterator[DriveEmulator]:
    """The Google Drive v3 emulator; its service-account key is ``drive_emulator.key_file``."""
    with DriveEmulator(_workdir(tmp_path, "drive-emulator")) as emulator:
        yield emulator


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh bucket on the moto server, and dummy AWS credentials in the environment.

    The daemon subprocess inherits the environment and finds the credentials through the
    standard AWS chain, as it would on a real host.
    """
    for key, value in AWS_TEST_ENVIRONMENT.items():
        monkeypatch.setenv(key, value)
    with fresh_bucket() as bucket:
        yield bucket
