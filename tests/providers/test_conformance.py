"""One behaviour suite for every provider (rclone's fstests, in small)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from cloudwatcher.providers import PermanentError, ProviderError, TransientError, UploadJob
from tests.providers.harness import ProviderHarness


def make_job(tmp_path: Path, remote_path: str, data: bytes) -> UploadJob:
    local = tmp_path / "src" / hashlib.sha256(remote_path.encode()).hexdigest()
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_bytes(data)
    return UploadJob(
        local_file=local,
        remote_path=remote_path,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        mtime_ns=local.stat().st_mtime_ns,
    )


async def no_state(state: dict[str, Any] | None) -> None:
    return None


async def upload_and_read(harness: ProviderHarness, tmp_path: Path, remote_path: str, data: bytes) -> bytes:
    result = await harness.provider.upload(make_job(tmp_path, remote_path, data), no_state)
    assert result.verification in ("hash", "transport")
    return await harness.provider.read(remote_path)


def sizes(harness: ProviderHarness) -> list[int]:
    chunk = harness.chunk_size or 256 * 1024
    return [0, 1, 1000, chunk, chunk + 1, 3 * chunk + 17]


async def test_uploaded_files_read_back_identical_for_every_size(harness: ProviderHarness, tmp_path: Path) -> None:
    for size in sizes(harness):
        data = os.urandom(size)
        assert await upload_and_read(harness, tmp_path, f"dev1/requests/size-{size}.bin", data) == data


async def test_upload_reports_path_size_and_hash(harness: ProviderHarness, tmp_path: Path) -> None:
    data = b"hello ledger\n"
    result = await harness.provider.upload(make_job(tmp_path, "dev1/requests/a/b/hello.txt", data), no_state)
    assert result.remote_size == len(data)
    assert result.remote_hash and ":" in result.remote_hash
    assert result.cloud_path.endswith("hello.txt")
    stat = await harness.provider.stat("dev1/requests/a/b/hello.txt")
    assert stat is not None and stat.size == len(data)


async def test_unicode_and_spaces_in_names_survive(harness: ProviderHarness, tmp_path: Path) -> None:
    name = "dev1/requests/Übergabe Protokoll/émission été 2026 ✓.txt"
    assert await upload_and_read(harness, tmp_path, name, b"unicode") == b"unicode"


async def test_reupload_replaces_the_file_without_a_second_copy(harness: ProviderHarness, tmp_path: Path) -> None:
    path = "dev1/requests/replace.txt"
    await upload_and_read(harness, tmp_path, path, b"first version")
    assert await upload_and_read(harness, tmp_path, path, b"second, longer version") == b"second, longer version"
    again = await harness.provider.upload(make_job(tmp_path, path, b"second, longer version"), no_state)
    assert again.remote_size == len(b"second, longer version")


async def test_stat_of_a_missing_file_is_none(harness: ProviderHarness) -> None:
    assert await harness.provider.stat("dev1/requests/never-uploaded.txt") is None


async def test_transient_fault_is_classified_transient_then_succeeds(harness: ProviderHarness, tmp_path: Path) -> None:
    job = make_job(tmp_path, "dev1/requests/transient.txt", b"try again")
    with harness.fault("transient"), pytest.raises(TransientError):
        await harness.provider.upload(job, no_state)
    await harness.provider.upload(job, no_state)
    assert await harness.provider.read("dev1/requests/transient.txt") == b"try again"


async def test_permanent_fault_is_classified_permanent(harness: ProviderHarness, tmp_path: Path) -> None:
    job = make_job(tmp_path, "dev1/requests/forbidden.txt", b"never")
    with harness.fault("permanent"), pytest.raises(PermanentError):
        await harness.provider.upload(job, no_state)


async def test_hash_mismatch_is_detected(harness: ProviderHarness, tmp_path: Path) -> None:
    job = make_job(tmp_path, "dev1/requests/mismatch.txt", b"bytes the server mangles")
    if harness.mismatch_is_server_modified:
        with harness.fault("hash_mismatch"):
            result = await harness.provider.upload(job, no_state)
        assert result.verification == "server-modified"
        return
    with harness.fault("hash_mismatch"), pytest.raises(ProviderError):
        await harness.provider.upload(job, no_state)


async def test_forbidden_names_are_renamed_not_refused(harness: ProviderHarness, tmp_path: Path) -> None:
    if harness.forbidden_name is None:
        name = "dev1/requests/plain-name.txt"
    else:
        name = f"dev1/requests/{harness.forbidden_name}"
    result = await harness.provider.upload(make_job(tmp_path, name, b"renamed"), no_state)
    assert harness.provider.remote_name(name).rsplit("/", 1)[-1] in result.cloud_path
    assert await harness.provider.read(name) == b"renamed"


@pytest.mark.parametrize("size_of", ["small", "several pieces"])
async def test_a_file_swapped_after_recording_is_never_stored(
    harness: ProviderHarness, tmp_path: Path, size_of: str
) -> None:
    """Same size, same mtime, other bytes (a device swapped the file): the upload fails before the
    piece that would commit it, and the target holds nothing at that path."""
    chunk = harness.chunk_size or 256 * 1024
    size = 1000 if size_of == "small" else 3 * chunk + 17
    job = make_job(tmp_path, f"dev1/requests/swapped-{size}.bin", os.urandom(size))
    job.watch_root = tmp_path / "src"  # as the daemon does: read through the gateway
    job.remote_path = f"dev1/requests/swapped-{size}.bin"
    device_file = tmp_path / "src/dev1/requests" / f"swapped-{size}.bin"
    device_file.parent.mkdir(parents=True)
    job.local_file.rename(device_file)
    job.local_file = device_file
    device_file.write_bytes(os.urandom(size))
    os.utime(device_file, ns=(job.mtime_ns, job.mtime_ns))
    with pytest.raises(ProviderError):
        await harness.provider.upload(job, no_state)
    assert await harness.provider.stat(job.remote_path) is None
