"""Google Drive behaviour beyond the conformance suite, through the real SDK and the emulator."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from google.auth.transport.requests import Request
from google.oauth2 import service_account
from googleapiclient.http import MediaInMemoryUpload

from cloudwatcher.providers import (
    DailyCapError,
    FileChangedError,
    PermanentError,
    TransientError,
    UploadJob,
)
from cloudwatcher.providers.google_drive import (
    CHUNK_GRANULARITY,
    DRIVE_SCOPE,
    GoogleDriveProvider,
)
from cloudwatcher.providers.google_drive.upload_cap import PERSISTENCE_SECONDS, UploadCapWatch
from tests.providers.harness_gdrive import drive_target
from tests.support.emulators.drive import DriveEmulator, DriveFile, RequestRecord
from tests.support.upload_jobs import StateLog, make_job

CHUNK = 4 * CHUNK_GRANULARITY  # 1 MiB: a dropped chunk can leave a partial, 256 KiB-aligned prefix


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[DriveEmulator]:
    with DriveEmulator(tmp_path) as running:
        yield running


ProviderFactory = Callable[..., GoogleDriveProvider]


@pytest.fixture
async def make_provider(emulator: DriveEmulator) -> AsyncIterator[ProviderFactory]:
    built: list[GoogleDriveProvider] = []

    def factory(**overrides: Any) -> GoogleDriveProvider:
        provider = GoogleDriveProvider(drive_target(emulator, **overrides), concurrency=4, chunk_size=CHUNK)
        built.append(provider)
        return provider

    yield factory
    for provider in built:
        await provider.close()


def chunk_puts(emulator: DriveEmulator) -> list[RequestRecord]:
    return [record for record in emulator.log("PUT", "/upload/") if record.content_range]


def initiations(emulator: DriveEmulator) -> list[RequestRecord]:
    return [
        record
        for record in emulator.log(path_prefix="/upload/")
        if record.query.get("uploadType") == "resumable" and record.method in ("POST", "PATCH")
    ]


# --- no duplicate names ------------------------------------------------------------------------


async def test_reupload_updates_the_existing_file_instead_of_adding_a_second(
    emulator: DriveEmulator, make_provider: ProviderFactory, tmp_path: Path
) -> None:
    provider = make_provider()
    first = await provider.upload(make_job(tmp_path, "dev1/requests/a.json", b"one"), StateLog())
    second = await provider.upload(make_job(tmp_path, "dev1/requests/a.json", b"two, longer"), StateLog())
    assert first.remote_id == second.remote_id
    [only] = emulator.lookup(emulator.root_folder_id, "dev1/requests/a.json")
    assert only.content == b"two, longer"
    assert [record.method for record in emulator.log(path_prefix="/upload/")] == ["POST", "PATCH"]


async def test_concurrent_uploads_into_a_new_folder_chain_create_each_folder_once(
    emulator: DriveEmulator, make_provider: ProviderFactory, tmp_path: Path
) -> None:
    provider = make_provider()
    jobs = [make_job(tmp_path, f"dev2/requests/x/y/z/file-{n}.bin", os.urandom(100 + n)) for n in range(8)]
    await asyncio.gather(*(provider.upload(job, StateLog()) for job in jobs))
    for folder in ("dev2", "dev2/requests", "dev2/requests/x", "dev2/requests/x/y", "dev2/requests/x/y/z"):
        assert len(emulator.lookup(emulator.root_folder_id, folder)) == 1, folder
    assert len(emulator.log("POST", "/drive/v3/files")) == 5
    assert len(emulator.children(emulator.lookup(emulator.root_folder_id, "dev2/requests/x/y/z")[0].id)) == 8


async def test_two_versions_of_one_path_uploaded_at_once_leave_one_file(
    emulator: DriveEmulator, make_provider: ProviderFactory, tmp_path: Path
) -> None:
    provider = make_provider()
    older = make_job(tmp_path / "v1", "dev3/requests/same.bin", os.urandom(CHUNK + 1))
    newer = make_job(tmp_path / "v2", "dev3/requests/same.bin", os.urandom(2000))
    results = await asyncio.gather(provider.upload(older, StateLog()), provider.upload(newer, StateLog()))
    [only] = emulator.lookup(emulator.root_folder_id, "dev3/requests/same.bin")
    assert {result.remote_id for result in results} == {only.id}


async def test_names_with_quotes_and_backslashes_are_found_again(
    emulator: DriveEmulator, make_provider: ProviderFactory, tmp_path: Path
) -> None:
    provider = make_provider()
    path = "dev1/requests/it's a \\ 'quoted' name.txt"
    await provider.upload(make_job(tmp_path, path, b"v1"), StateLog())
    await provider.upload(make_job(tmp_path, path, b"v2"), StateLog())
    assert len(emulator.lookup(emulator.root_folder_id, path)) == 1
    assert await provider.read(path) == b"v2"


async def test_existing_duplicates_are_paged_through_and_not_multiplied(
    emulator: DriveEmulator, make_provider: ProviderFactory, tmp_path: Path
) -> None:
    provider = make_provider()
    await provider.upload(make_job(tmp_path, "dev1/requests/dup.txt", b"first"), StateLog())
    [folder] = emulator.lookup(emulator.root_folder_id, "dev1/requests")
    # Someone else (a person, another tool) created a second file of the same name.
    emulator._add(DriveFile(emulator.new_id(), "dup.txt", "text/plain", [folder.id], content=b"other"))
    emulator.page_size_cap = 1  # Drive may return fewer items than asked: follow nextPageToken
    await provider.upload(make_job(tmp_path, "dev1/requests/dup.txt", b"third"), StateLog())
    assert len(emulator.lookup(emulator.root_folder_id, "dev1/requests/dup.txt")) == 2
    assert any("pageToken" in record.query for record in emulator.log("GET", "/drive/v3/files"))


@pytest.mark.parametrize("ending", [b"\r", b"\n", b"\r\n", b"\n\n", b"\r\n\r\n"])
async def test_small_files_ending_in_line_breaks_arrive_byte_for_byte(
    make_provider: ProviderFactory, tmp_path: Path, ending: bytes
) -> None:
    provider = make_provider()
    data = b"header\r\n\r\nbody\n\n" + ending
    result = await provider.upload(make_job(tmp_path, "dev1/requests/eol.txt", data), StateLog())
    assert result.remote_size == len(data)
    assert await provider.read("dev1/requests/eol.txt") == data


# --- emulator strictness -----------------------------------------------------------------------


def bearer(emulator: DriveEmulator) -> str:
    credentials = service_account.Credentials.from_service_account_file(str(emulator.key_file), scopes=[DRIVE_SCOPE])
    credentials.refresh(Request())
    return f"Bearer {credentials.token}"


def start_session(emulator: DriveEmulator, token: str, total: int) -> str:
    answer = requests.post(
        f"{emulator.url}/upload/drive/v3/files?uploadType=resumable",
        json={"name": "raw.bin", "parents": [emulator.root_folder_id]},
        headers={"Authorization": token, "X-Upload-Content-Length": str(total)},
        timeout=10,
    )
    assert answer.status_code == 200
    return answer.headers["Location"]


def test_emulator_refuses_chunks_that_are_not_256_kib_multiples_or_out_of_order(
    emulator: DriveEmulator,
) -> None:
    token = bearer(emulator)
    session = start_session(emulator, token, 3 * CHUNK_GRANULARITY)

    def put(start: int, length: int) -> requests.Response:
        end = start + length - 1
        return requests.put(
            session,
            data=b"x" * length,
            headers={"Authorization": token, "Content-Range": f"bytes {start}-{end}/{3 * CHUNK_GRANULARITY}"},
            timeout=10,
        )

    odd = put(0, 1000)
    assert odd.status_code == 400
    assert odd.json()["error"]["errors"][0]["reason"] == "invalid"
    assert put(0, CHUNK_GRANULARITY).status_code == 308
    skipped = put(2 * CHUNK_GRANULARITY, CHUNK_GRANULARITY)
    assert skipped.status_code == 400
    status = requests.put(
        session,
        headers={"Authorization": token, "Content-Range": f"bytes */{3 * CHUNK_GRANULARITY}"},
        timeout=10,
    )
    assert status.status_code == 308
    assert status.headers["Range"] == f"bytes=0-{CHUNK_GRANULARITY - 1}"


def test_emulator_answers_401_without_a_bearer_on_api_calls_and_chunks(emulator: DriveEmulator) -> None:
    listing = requests.get(f"{emulator.url}/drive/v3/files", params={"q": "trashed = false"}, timeout=10)
    assert listing.status_code == 401
    error = listing.json()["error"]
    assert error["code"] == 401 and error["errors"][0]["reason"] == "required"
    session = start_session(emulator, bearer(emulator), 10)
    chunk = requests.put(session, data=b"0123456789", headers={"Content-Range": "bytes 0-9/10"}, timeout=10)
    assert chunk.status_code == 401
    forged = requests.get(f"{emulator.url}/drive/v3/files", headers={"Authorization": "Bearer forged"}, timeout=10)
    assert forged.status_code == 401 and forged.json()["error"]["errors"][0]["reason"] == "authError"


async def test_expired_access_token_is_refreshed_and_the_upload_goes_through(
    emulator: DriveEmulator, make_provider: ProviderFactory, tmp_path: Path
) -> None:
    provider = make_provider()
    await provider.upload(make_job(tmp_path, "dev1/requests/t1.txt", b"one"), StateLog())
    emulator.expire_tokens()
    await provider.upload(make_job(tmp_path, "dev1/requests/t2.txt", b"two"), StateLog())
    assert len(emulator.log("POST", "/token")) >= 2
    assert await provider.read("dev1/requests/t2.txt") == b"two"


# --- resumable uploads -------------------------------------------------------------------------


async def test_dropped_chunk_resumes_the_same_session_from_the_servers_offset(
    emulator: DriveEmulator, make_provider: ProviderFactory, tmp_path: Path
) -> None:
    provider = make_provider()
    data = os.urandom(3 * CHUNK + 17)
    emulator.drop_next_chunk()
    states = StateLog()
    result = await provider.upload(make_job(tmp_path, "dev1/requests/big.bin", data), states)
    assert result.verification == "hash" and result.remote_hash == f"md5:{hashlib.md5(data).hexdigest()}"
    assert await provider.read("dev1/requests/big.bin") == data
    assert len(initiations(emulator)) == 1
    puts = chunk_puts(emulator)
    assert len({record.query["upload_id"] for record in puts}) == 1
    assert any(record.content_range == f"bytes */{len(data)}" for record in puts)
    # Half of the first 1 MiB chunk reached the server: the upload went on from byte 512 KiB.
    assert any(record.content_range.startswith(f"bytes {CHUNK // 2}-") for record in puts if record.content_range)
    assert states.calls[0] is not None and states.calls[-1] is None


async def test_restarted_daemon_resumes_the_saved_session(
    emulator: DriveEmulator, make_provider: ProviderFactory, tmp_path: Path
) -> None:
    data = os.urandom(3 * CHUNK + 17)
    job = make_job(tmp_path, "dev1/requests/restart.bin", data)
    emulator.fail_next(
        503,
        "backendError",
        when=lambda record: (record.content_range or "").startswith(f"bytes {2 * CHUNK}-"),
    )
    states = StateLog()
    with pytest.raises(TransientError):
        await make_provider().upload(job, states)
    saved = states.calls[-1]
    assert saved is not None and saved["session_uri"].startswith(emulator.url)
    before = len(emulator.requests)

    restarted = make_provider()  # a new process: nothing cached, only the ledger's state
    resumed = StateLog()
    resumed_job = make_job(tmp_path, "dev1/requests/restart.bin", data, resume_state=saved)
    await restarted.upload(resumed_job, resumed)
    after = emulator.requests[before:]
    assert not [record for record in after if record.query.get("uploadType") == "resumable" and record.method == "POST"]
    session_puts = [record for record in after if record.method == "PUT"]
    assert session_puts[0].content_range == f"bytes */{len(data)}"
    assert (session_puts[1].content_range or "").startswith(f"bytes {2 * CHUNK}-")
    assert {record.query["upload_id"] for record in session_puts} == {saved["session_uri"].rsplit("upload_id=", 1)[1]}


async def test_quick_retry_with_the_same_job_continues_the_session(
    emulator: DriveEmulator, make_provider: ProviderFactory, tmp_path: Path
) -> None:
    # The daemon's in-attempt retries pass the job again, resume_state still as claimed (None).
    provider = make_provider()
    data = os.urandom(3 * CHUNK + 17)
    job = make_job(tmp_path, "dev1/requests/quick.bin", data)
    emulator.fail_next(
        503, "backendError", when=lambda record: (record.content_range or "").startswith(f"bytes {2 * CHUNK}-")
    )
    with pytest.raises(TransientError):
        await provider.upload(job, StateLog())
    await provider.upload(job, StateLog())
    assert len(initiations(emulator)) == 1
    starts = [record.content_range.split("-")[0] for record in chunk_puts(emulator) if record.content_range]
    assert starts.count("bytes 0") == 1
    assert await provider.read("dev1/requests/quick.bin") == data


async def test_expired_saved_session_starts_over_without_a_duplicate(
    emulator: DriveEmulator, make_provider: ProviderFactory, tmp_path: Path
) -> None:
    data = os.urandom(2 * CHUNK + 1)
    emulator.fail_next(
        503, "backendError", when=lambda record: (record.content_range or "").startswith(f"bytes {CHUNK}-")
    )
    states = StateLog()
    with pytest.raises(TransientError):
        await make_provider().upload(make_job(tmp_path, "dev1/requests/old.bin", data), states)
    emulator.expire_sessions()
    job = make_job(tmp_path, "dev1/requests/old.bin", data, resume_state=states.calls[-1])
    await make_provider().upload(job, StateLog())
    assert len(initiations(emulator)) == 2
    [only] = emulator.lookup(emulator.root_folder_id, "dev1/requests/old.bin")
    assert only.content == data


async def test_abandon_cancels_the_session(
    emulator: DriveEmulator, make_provider: ProviderFactory, tmp_path: Path
) -> None:
    provider = make_provider()
    emulator.fail_next(
        503, "backendError", when=lambda record: (record.content_range or "").startswith(f"bytes {CHUNK}-")
    )
    states = StateLog()
    with pytest.raises(TransientError):
        await provider.upload(make_job(tmp_path, "dev1/requests/gone.bin", os.urandom(2 * CHUNK)), states)
    saved = states.calls[-1]
    assert saved is not None
    await provider.abandon(saved)
    assert emulator.log("DELETE", "/upload/")


async def test_file_changed_since_recording_is_refused_before_any_upload(
    emulator: DriveEmulator, make_provider: ProviderFactory, tmp_path: Path
) -> None:
    job = make_job(tmp_path, "dev1/requests/changing.txt", b"recorded")
    job.local_file.write_bytes(b"changed after it was recorded")
    with pytest.raises(FileChangedError):
        await make_provider().upload(job, StateLog())
    assert not emulator.log(path_prefix="/upload/")


# --- error classes -----------------------------------------------------------------------------


async def test_daily_upload_cap_parks_the_target_until_it_can_have_reset(
    emulator: DriveEmulator, make_provider: ProviderFactory, tmp_path: Path
) -> None:
    emulator.daily_upload_cap()
    with pytest.raises(DailyCapError) as raised:
        await make_provider().upload(make_job(tmp_path, "dev1/requests/d.txt", b"cap"), StateLog())
    assert raised.value.retry_after is not None and 60 <= raised.value.retry_after <= 25 * 3600


async def test_daily_cap_answered_as_a_user_rate_limit_parks_the_target(
    emulator: DriveEmulator, make_provider: ProviderFactory, tmp_path: Path
) -> None:
    emulator.daily_upload_cap_as_rate_limit()
    with pytest.raises(DailyCapError, match="userRateLimitExceeded") as raised:
        await make_provider().upload(make_job(tmp_path, "dev1/requests/capped.txt", b"cap"), StateLog())
    assert raised.value.retry_after is not None and 60 <= raised.value.retry_after <= 25 * 3600


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def watched(provider: GoogleDriveProvider) -> FakeClock:
    """Give ``provider`` an upload-cap watch on a clock the test moves."""
    clock = FakeClock()
    provider._upload_cap = UploadCapWatch(clock=clock)
    return clock


async def throttled_for_a_minute(provider: GoogleDriveProvider, job: UploadJob) -> None:
    """The upload is refused as throttled for now, not parked for the day."""
    with pytest.raises(TransientError) as raised:
        await provider.upload(job, StateLog())
    assert not isinstance(raised.value, DailyCapError)


async def test_a_per_minute_limit_that_outlasts_its_window_is_taken_for_the_daily_cap(
    emulator: DriveEmulator, make_provider: ProviderFactory, tmp_path: Path
) -> None:
    provider = make_provider()
    clock = watched(provider)
    job = make_job(tmp_path, "dev1/requests/persistent.txt", b"throttled for minutes")
    emulator.rate_limit(count=3)
    await throttled_for_a_minute(provider, job)
    clock.now += PERSISTENCE_SECONDS - 1  # still within reason for a per-minute limit
    await throttled_for_a_minute(provider, job)
    clock.now += 2
    with pytest.raises(DailyCapError, match="daily upload limit"):
        await provider.upload(job, StateLog())
    # After the parking, throttling is judged afresh: one answer is a per-minute limit again.
    clock.now += 24 * 3600
    emulator.rate_limit()
    await throttled_for_a_minute(provider, job)


async def test_an_upload_getting_through_clears_the_memory_of_rate_limits(
    emulator: DriveEmulator, make_provider: ProviderFactory, tmp_path: Path
) -> None:
    provider = make_provider()
    clock = watched(provider)
    job = make_job(tmp_path, "dev1/requests/intermittent.txt", b"throttled now and then")
    emulator.rate_limit()
    with pytest.raises(TransientError):
        await provider.upload(job, StateLog())
    clock.now += PERSISTENCE_SECONDS - 1
    await provider.upload(job, StateLog())
    clock.now += PERSISTENCE_SECONDS - 1
    emulator.rate_limit()
    await throttled_for_a_minute(provider, job)


async def test_missing_root_folder_is_permanent(
    emulator: DriveEmulator, make_provider: ProviderFactory, tmp_path: Path
) -> None:
    provider = make_provider(folder_id="no-such-folder")
    with pytest.raises(PermanentError, match="notFound"):
        await provider.upload(make_job(tmp_path, "dev1/requests/n.txt", b"nowhere"), StateLog())


# --- shared drives, TLS, pacing ----------------------------------------------------------------


async def test_shared_drive_parameters_are_sent_on_every_call(
    emulator: DriveEmulator, make_provider: ProviderFactory, tmp_path: Path
) -> None:
    drive_id = emulator.create_shared_drive()
    provider = make_provider(shared_drive_id=drive_id, folder_id=drive_id)
    data = os.urandom(CHUNK + 5)
    await provider.upload(make_job(tmp_path, "dev1/requests/shared.bin", data), StateLog())
    assert await provider.read("dev1/requests/shared.bin") == data
    [stored] = emulator.lookup(drive_id, "dev1/requests/shared.bin")
    assert stored.drive_id == drive_id
    api_calls = [record for record in emulator.requests if record.path != "/token"]
    assert api_calls and all(
        record.query.get("supportsAllDrives") == "true" for record in api_calls if "upload_id" not in record.query
    )
    listings = [record for record in emulator.log("GET") if record.path == "/drive/v3/files"]
    assert listings and all(
        record.query.get("driveId") == drive_id
        and record.query.get("corpora") == "drive"
        and record.query.get("includeItemsFromAllDrives") == "true"
        for record in listings
    )


async def test_tls_endpoint_is_trusted_through_ca_bundle_for_token_api_and_uploads(tmp_path: Path) -> None:
    with DriveEmulator(tmp_path, tls=True) as emulator:
        bundle = emulator.write_ca_bundle(tmp_path / "ca.pem")
        trusting = GoogleDriveProvider(drive_target(emulator, ca_bundle=bundle), chunk_size=CHUNK)
        untrusting = GoogleDriveProvider(drive_target(emulator), chunk_size=CHUNK)
        try:
            data = os.urandom(CHUNK + 3)
            await trusting.upload(make_job(tmp_path, "dev1/requests/tls.bin", data), StateLog())
            assert await trusting.read("dev1/requests/tls.bin") == data
            assert emulator.log("POST", "/token") and chunk_puts(emulator)
            with pytest.raises(PermanentError, match="certificate"):
                await untrusting.stat("dev1/requests/tls.bin")
        finally:
            await trusting.close()
            await untrusting.close()


async def test_requests_per_second_paces_every_api_request_but_not_the_token_endpoint(
    emulator: DriveEmulator, make_provider: ProviderFactory
) -> None:
    provider = make_provider(requests_per_second=5.0)
    started = time.monotonic()
    for number in range(11):
        assert await provider.stat(f"dev{number}/requests/missing.txt") is None
    elapsed = time.monotonic() - started
    api_calls = [record for record in emulator.requests if record.path != "/token"]
    assert len(api_calls) == 11  # one folder lookup per stat
    assert emulator.log("POST", "/token")
    assert elapsed >= (11 - 5) / 5.0 * 0.9  # a burst of 5, then 5 per second


async def test_cancelled_upload_stops_at_the_next_chunk_and_resumes_later(
    emulator: DriveEmulator, make_provider: ProviderFactory, tmp_path: Path
) -> None:
    # 512 KiB/s against 1 MiB chunks: every chunk after the burst waits about two seconds.
    provider = make_provider(bandwidth_limit="512K")
    data = os.urandom(4 * CHUNK)
    states = StateLog()
    task = asyncio.create_task(provider.upload(make_job(tmp_path, "dev1/requests/slow.bin", data), states))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(3.0)  # long enough for two more chunks, had the thread kept going
    sent = [record for record in chunk_puts(emulator) if not (record.content_range or "").startswith("bytes */")]
    assert len(sent) == 1
    assert not emulator.lookup(emulator.root_folder_id, "dev1/requests/slow.bin")
    saved = states.calls[-1]
    assert saved is not None
    fast = make_provider()
    job = make_job(tmp_path, "dev1/requests/slow.bin", data, resume_state=saved)
    await fast.upload(job, StateLog())
    assert await fast.read("dev1/requests/slow.bin") == data
    assert len(initiations(emulator)) == 1


async def test_api_endpoint_roots_metadata_and_upload_urls_alike(
    emulator: DriveEmulator, make_provider: ProviderFactory, tmp_path: Path
) -> None:
    provider = make_provider(api_endpoint="http://drive-proxy.internal:8080/google/")
    files = await asyncio.to_thread(provider._files)
    listing = files.list(q="trashed = false")
    assert listing.uri.startswith("http://drive-proxy.internal:8080/google/drive/v3/files?")
    media = MediaInMemoryUpload(b"x" * 10, mimetype="text/plain", resumable=True)
    upload = files.create(body={"name": "x"}, media_body=media)
    assert upload.uri.startswith("http://drive-proxy.internal:8080/google/upload/drive/v3/files?")
