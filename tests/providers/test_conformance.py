"""One behaviour suite for every provider (rclone's fstests, in small).

What only some services have (throttling with Retry-After, a quota, resumable upload sessions) is
tested here too, once, for every provider whose harness says it has it; a provider without it is
skipped with the capability it lacks. Each provider's own test file keeps only its wire quirks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from cloudwatcher.providers import (
    DailyCapError,
    FileChangedError,
    PermanentError,
    ProviderError,
    QuotaExceededError,
    TransientError,
    UploadJob,
)
from tests.providers.harness import THROTTLE_SECONDS, FaultKind, ProviderHarness, Sessions
from tests.support.upload_jobs import StateLog, make_job, no_state


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


# Behaviours only some services have: each test says which capability a provider lacks.


def needs_fault(harness: ProviderHarness, kind: FaultKind) -> None:
    if kind not in harness.faults:
        pytest.skip(f"{harness.provider.name} has no {kind} fault")


def needs_sessions(harness: ProviderHarness) -> Sessions:
    if harness.sessions is None:
        pytest.skip(f"{harness.provider.name} has no upload sessions (each upload is one piece)")
    return harness.sessions


async def test_a_file_changed_since_it_was_recorded_is_refused(harness: ProviderHarness, tmp_path: Path) -> None:
    job = make_job(tmp_path, "dev1/requests/changed.txt", b"recorded")
    job.local_file.write_bytes(b"changed after it was recorded")
    with pytest.raises(FileChangedError):
        await harness.provider.upload(job, no_state)
    assert await harness.provider.stat("dev1/requests/changed.txt") is None


async def test_throttling_surfaces_the_servers_retry_after(harness: ProviderHarness, tmp_path: Path) -> None:
    needs_fault(harness, "throttled")
    with harness.fault("throttled"), pytest.raises(TransientError) as raised:
        await harness.provider.upload(make_job(tmp_path, "dev1/requests/throttled.txt", b"later"), no_state)
    assert not isinstance(raised.value, DailyCapError)  # a pause, not a day's cap
    assert raised.value.retry_after == THROTTLE_SECONDS


async def test_a_full_store_is_a_quota_error(harness: ProviderHarness, tmp_path: Path) -> None:
    needs_fault(harness, "quota")
    await harness.provider.upload(make_job(tmp_path, "dev1/requests/first.txt", b"x"), no_state)
    with harness.fault("quota"), pytest.raises(QuotaExceededError):
        await harness.provider.upload(make_job(tmp_path, "dev1/requests/full.txt", b"x"), no_state)


async def interrupted(harness: ProviderHarness, tmp_path: Path, name: str) -> tuple[UploadJob, bytes, dict[str, Any]]:
    """A multi-piece upload stopped (the daemon stopping) once its session is saved; the saved state."""
    data = os.urandom(3 * (harness.chunk_size or 256 * 1024) + 17)
    job = make_job(tmp_path, f"dev1/requests/{name}", data)
    states = StateLog()

    async def stop_once_saved(state: dict[str, Any] | None) -> None:
        await states(state)
        if state is not None:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await harness.provider.upload(job, stop_once_saved)
    assert states.last is not None
    return job, data, states.last


async def test_an_interrupted_upload_resumes_from_its_saved_session(harness: ProviderHarness, tmp_path: Path) -> None:
    sessions = needs_sessions(harness)
    job, data, saved = await interrupted(harness, tmp_path, "resume.bin")
    assert sessions.open() == 1  # kept for the restarted daemon
    states = StateLog()
    result = await harness.provider.upload(dataclasses.replace(job, resume_state=saved), states)
    assert result.verification == "hash" and result.remote_size == len(data)
    assert await harness.provider.read("dev1/requests/resume.bin") == data
    assert states.last is None and sessions.open() == 0


async def test_a_saved_session_the_server_forgot_starts_over(harness: ProviderHarness, tmp_path: Path) -> None:
    sessions = needs_sessions(harness)
    job, data, saved = await interrupted(harness, tmp_path, "expired.bin")
    sessions.expire()
    result = await harness.provider.upload(dataclasses.replace(job, resume_state=saved), StateLog())
    assert result.verification == "hash"
    assert await harness.provider.read("dev1/requests/expired.bin") == data


async def test_abandon_ends_the_saved_session_and_a_second_abandon_is_harmless(
    harness: ProviderHarness, tmp_path: Path
) -> None:
    sessions = needs_sessions(harness)
    _, _, saved = await interrupted(harness, tmp_path, "abandoned.bin")
    assert sessions.open() == 1
    await harness.provider.abandon(saved)
    assert sessions.open() == 0
    await harness.provider.abandon(saved)  # after a crash the daemon may abandon it again
