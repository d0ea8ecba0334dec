"""SharePoint-specific behaviour: QuickXorHash, the emulator's strictness, sessions, errors, names.

The conformance suite covers what every provider shares; these tests cover what only Graph
has: upload sessions that resume, ``Retry-After``, quota errors, site resolution and the
renaming rule. Everything runs through the real SDK against :mod:`tests.support.emulators.graph`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from cloudwatcher.providers import (
    FileChangedError,
    PermanentError,
    Provider,
    ProviderError,
    TransientError,
    UploadJob,
    build_provider,
)
from cloudwatcher.providers.sharepoint import (
    FRAGMENT_SIZE,
    QuickXorMismatchError,
    SharePointProvider,
    sanitize_segment,
)
from cloudwatcher.providers.sharepoint.quickxorhash import quickxorhash
from tests.providers.harness_sharepoint import target_for
from tests.support.emulators.graph import GraphEmulator
from tests.support.upload_jobs import StateLog, make_job

# ----------------------------------------------------------------------------------- fixtures


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[GraphEmulator]:
    with GraphEmulator(tmp_path) as running:
        yield running


@pytest.fixture
async def provider(emulator: GraphEmulator) -> AsyncIterator[SharePointProvider]:
    built = SharePointProvider(target_for(emulator), concurrency=2)
    yield built
    await built.close()


def fragment_puts(emulator: GraphEmulator) -> list[str]:
    return [entry.content_range or "" for entry in emulator.requests("PUT", host="localhost")]


# ----------------------------------------------------------------------------------- uploads


async def test_large_upload_uses_a_session_of_320_kib_multiples_without_a_bearer(
    provider: SharePointProvider, emulator: GraphEmulator, tmp_path: Path
) -> None:
    data = os.urandom(2 * FRAGMENT_SIZE + 12345)
    states = StateLog()
    result = await provider.upload(make_job(tmp_path, "dev1/requests/big.bin", data), states)
    assert result.verification == "hash"
    assert result.remote_hash == f"quickxor:{quickxorhash(data)}"
    assert emulator.file_bytes("CloudWatcher/dev1/requests/big.bin") == data
    uploads = emulator.requests("PUT", host="localhost")
    assert [entry.content_range for entry in uploads] == [
        f"bytes 0-{FRAGMENT_SIZE - 1}/{len(data)}",
        f"bytes {FRAGMENT_SIZE}-{2 * FRAGMENT_SIZE - 1}/{len(data)}",
        f"bytes {2 * FRAGMENT_SIZE}-{len(data) - 1}/{len(data)}",
    ]
    assert not any(entry.authorization for entry in emulator.requests(host="localhost"))
    assert all(entry.authorization for entry in emulator.requests(host="127.0.0.1") if "oauth2" not in entry.path)
    assert states.calls[0] is not None and set(states.calls[0]) == {"upload_url", "expires", "started"}
    assert states.calls[-1] is None


async def test_small_upload_is_one_put_of_the_content(
    provider: SharePointProvider, emulator: GraphEmulator, tmp_path: Path
) -> None:
    states = StateLog()
    await provider.upload(make_job(tmp_path, "dev1/requests/small.json", b"{}"), states)
    puts = emulator.requests("PUT")
    assert len(puts) == 1 and puts[0].path.endswith(":/small.json:/content")
    assert states.calls == []


async def test_closed_next_expected_ranges_are_understood(tmp_path: Path) -> None:
    with GraphEmulator(tmp_path, closed_ranges=True) as emulator:
        provider = SharePointProvider(target_for(emulator))
        try:
            data = os.urandom(2 * FRAGMENT_SIZE + 1)
            await provider.upload(make_job(tmp_path, "dev1/requests/ranges.bin", data), StateLog())
            assert len(emulator.requests("PUT", host="localhost")) == 3
            assert await provider.read("dev1/requests/ranges.bin") == data
        finally:
            await provider.close()


@pytest.mark.parametrize("after_commit", [False, True], ids=["lost-fragment", "lost-answer"])
async def test_upload_session_continues_after_a_dropped_fragment(
    provider: SharePointProvider, emulator: GraphEmulator, tmp_path: Path, after_commit: bool
) -> None:
    data = os.urandom(3 * FRAGMENT_SIZE + 17)
    emulator.drop_next_fragment(after_commit=after_commit)
    result = await provider.upload(make_job(tmp_path, "dev1/requests/dropped.bin", data), StateLog())
    assert result.verification == "hash"
    assert emulator.file_bytes("CloudWatcher/dev1/requests/dropped.bin") == data
    assert len([entry for entry in emulator.requests("POST") if "createUploadSession" in entry.path]) == 1
    session_log = [(entry.method, entry.status) for entry in emulator.requests(host="localhost")]
    assert session_log[:3] == [("PUT", 0), ("GET", 200), ("PUT", 202)]
    expected_starts = [0, 0, FRAGMENT_SIZE] if not after_commit else [0, FRAGMENT_SIZE]
    starts = [int(r.split()[1].split("-")[0]) for r in fragment_puts(emulator)]
    assert starts[: len(expected_starts)] == expected_starts


async def test_the_last_fragment_answer_lost_still_yields_the_item(
    provider: SharePointProvider, emulator: GraphEmulator, tmp_path: Path
) -> None:
    data = os.urandom(2 * FRAGMENT_SIZE + 5)  # over 4 MiB: an upload session
    job = make_job(tmp_path, "dev1/requests/tail.bin", data)
    result = await _upload_dropping_last_fragment(provider, emulator, job)
    assert result.verification == "hash"
    assert emulator.file_bytes("CloudWatcher/dev1/requests/tail.bin") == data
    # The session closed with the last fragment, so its GET is a 404 and the item is looked up.
    assert [(entry.method, entry.status) for entry in emulator.requests(host="localhost")] == [
        ("PUT", 202),
        ("PUT", 202),
        ("PUT", 0),
        ("GET", 404),
    ]
    assert emulator.requests("GET", host="127.0.0.1")[-1].path.endswith("/tail.bin:")


async def _upload_dropping_last_fragment(
    provider: SharePointProvider, emulator: GraphEmulator, job: UploadJob, *, lose_session: bool = False
) -> Any:
    """Let the first two fragments through, then lose the answer to the third and last.

    ``lose_session`` loses the fragment itself and the session with it (it expired meanwhile):
    the client finds the session gone, as when it completed, but nothing new was stored.
    """
    original = emulator.take_drop
    seen = {"puts": 0}

    def take_drop() -> bool | None:
        seen["puts"] += 1
        if seen["puts"] != 3:
            return original()
        if lose_session:
            emulator.sessions.clear()
            return False
        return True

    emulator.take_drop = take_drop  # type: ignore[method-assign]
    try:
        return await provider.upload(job, StateLog())
    finally:
        emulator.take_drop = original  # type: ignore[method-assign]


async def stopped_after(
    provider: SharePointProvider, emulator: GraphEmulator, job: UploadJob, *, fragments: int
) -> StateLog:
    """Upload ``job`` until Graph stops taking fragments after ``fragments`` of them; what was saved."""
    emulator.fail_next(503, "serviceNotAvailable", where="upload", skip=fragments, count=100)
    states = StateLog()
    with pytest.raises(TransientError):
        await provider.upload(job, states)
    emulator.clear_faults()
    return states


async def test_an_interrupted_upload_resumes_from_the_saved_session(
    provider: SharePointProvider, emulator: GraphEmulator, tmp_path: Path
) -> None:
    data = os.urandom(4 * FRAGMENT_SIZE)
    job = make_job(tmp_path, "dev1/requests/resume.bin", data)
    states = await stopped_after(provider, emulator, job, fragments=2)
    saved = states.calls[-1]
    assert saved is not None and saved["upload_url"].startswith(emulator.upload_base)
    emulator.log.clear()
    await provider.upload(dataclasses.replace(job, resume_state=saved), states)
    assert not [entry for entry in emulator.requests("POST") if "createUploadSession" in entry.path]
    assert fragment_puts(emulator)[0].startswith(f"bytes {2 * FRAGMENT_SIZE}-")


async def test_an_expired_saved_session_starts_over(
    provider: SharePointProvider, emulator: GraphEmulator, tmp_path: Path
) -> None:
    data = os.urandom(2 * FRAGMENT_SIZE)
    job = make_job(tmp_path, "dev1/requests/expired.bin", data)
    states = await stopped_after(provider, emulator, job, fragments=1)
    emulator.expire_sessions()
    saved = states.calls[-1]
    await provider.upload(dataclasses.replace(job, resume_state=saved), states)
    assert len([entry for entry in emulator.requests("POST") if "createUploadSession" in entry.path]) == 2


async def test_a_saved_session_for_a_file_now_small_is_cancelled(
    provider: SharePointProvider, emulator: GraphEmulator, tmp_path: Path
) -> None:
    big = make_job(tmp_path, "dev1/requests/shrunk.bin", os.urandom(2 * FRAGMENT_SIZE))
    states = await stopped_after(provider, emulator, big, fragments=1)
    small = make_job(tmp_path, "dev1/requests/shrunk.bin", b"small now", resume_state=states.calls[-1])
    result = await provider.upload(small, states)
    assert result.verification == "hash"
    assert not emulator.sessions and states.calls[-1] is None
    assert emulator.file_bytes("CloudWatcher/dev1/requests/shrunk.bin") == b"small now"


async def test_abandon_deletes_the_upload_session(
    provider: SharePointProvider, emulator: GraphEmulator, tmp_path: Path
) -> None:
    job = make_job(tmp_path, "dev1/requests/abandoned.bin", os.urandom(2 * FRAGMENT_SIZE))
    states = await stopped_after(provider, emulator, job, fragments=1)
    saved = states.calls[-1]
    assert saved is not None and emulator.sessions
    await provider.abandon(saved)
    assert emulator.requests("DELETE", host="localhost")[0].status == 204


async def test_an_answer_without_hashes_is_verified_by_transport(
    provider: SharePointProvider, emulator: GraphEmulator, tmp_path: Path
) -> None:
    emulator.report_hashes = False
    data = os.urandom(2 * FRAGMENT_SIZE + 1)
    result = await provider.upload(make_job(tmp_path, "dev1/requests/nohash.bin", data), StateLog())
    assert (result.verification, result.remote_hash, result.remote_size) == ("transport", None, len(data))


@pytest.mark.parametrize("size", [2000, 2 * FRAGMENT_SIZE], ids=["simple", "session"])
async def test_any_other_hash_after_an_acknowledged_upload_is_server_modified(
    provider: SharePointProvider, emulator: GraphEmulator, tmp_path: Path, size: int
) -> None:
    # Not a type on any list, and the same size: SharePoint acknowledged every byte and answered
    # with the stored item, so whatever differs is the library's doing.
    emulator.report_wrong_hash()
    result = await provider.upload(make_job(tmp_path, "dev1/requests/w.dat", os.urandom(size)), StateLog())
    assert (result.verification, result.remote_size) == ("server-modified", size)
    assert result.remote_hash is not None and result.remote_hash.startswith("quickxor:")


def uploads_started(emulator: GraphEmulator) -> int:
    return len([entry for entry in emulator.requests("POST") if "createUploadSession" in entry.path])


@pytest.mark.parametrize("keep_size", [False, True], ids=["grown", "same-size"])
async def test_a_rewritten_file_whose_final_answer_was_lost_is_server_modified_after_one_upload(
    provider: SharePointProvider, emulator: GraphEmulator, tmp_path: Path, keep_size: bool
) -> None:
    emulator.rewrite_on_upload(".bin", keep_size=keep_size)
    data = os.urandom(2 * FRAGMENT_SIZE + 5)
    result = await _upload_dropping_last_fragment(provider, emulator, make_job(tmp_path, "dev1/requests/r.bin", data))
    stored = emulator.file_bytes("CloudWatcher/dev1/requests/r.bin")
    assert stored is not None and stored != data and (len(stored) == len(data)) is keep_size
    assert result.verification == "server-modified"
    assert (result.remote_size, result.remote_hash) == (len(stored), f"quickxor:{quickxorhash(stored)}")
    assert uploads_started(emulator) == 1


async def test_a_lost_final_answer_that_finds_an_older_version_is_an_error(
    provider: SharePointProvider, emulator: GraphEmulator, tmp_path: Path
) -> None:
    await provider.upload(make_job(tmp_path, "dev1/requests/old.bin", b"the version before"), StateLog())
    item = emulator.drive.walk(emulator.drive.root, ["CloudWatcher", "dev1", "requests", "old.bin"])
    item.modified = time.time() - 3600
    job = make_job(tmp_path, "dev1/requests/old.bin", os.urandom(2 * FRAGMENT_SIZE + 5))
    with pytest.raises(QuickXorMismatchError, match="older version"):
        # The last fragment is lost with its session: nothing new was stored.
        await _upload_dropping_last_fragment(provider, emulator, job, lose_session=True)
    assert emulator.file_bytes("CloudWatcher/dev1/requests/old.bin") == b"the version before"


# ----------------------------------------------------------------------------------- errors and auth


async def test_a_429_names_graphs_error_code(
    provider: SharePointProvider, emulator: GraphEmulator, tmp_path: Path
) -> None:
    emulator.fail_next(429, "tooManyRequests", retry_after=7)
    with pytest.raises(TransientError) as raised:
        await provider.upload(make_job(tmp_path, "dev1/requests/throttled.txt", b"x"), StateLog())
    assert "tooManyRequests" in str(raised.value)


async def test_a_throttled_fragment_is_sent_again_no_sooner_than_retry_after(
    provider: SharePointProvider, emulator: GraphEmulator, tmp_path: Path
) -> None:
    data = os.urandom(2 * FRAGMENT_SIZE + 5)
    emulator.fail_next(429, "tooManyRequests", retry_after=1, where="upload", skip=1)
    result = await provider.upload(make_job(tmp_path, "dev1/requests/throttled.bin", data), StateLog())
    assert result.verification == "hash"
    session_log = emulator.requests(host="localhost")
    throttled = next(i for i, entry in enumerate(session_log) if entry.status == 429)
    assert session_log[throttled + 1].at - session_log[throttled].at >= 1
    assert uploads_started(emulator) == 1  # the session kept its place


async def test_a_revoked_token_is_replaced_once(
    provider: SharePointProvider, emulator: GraphEmulator, tmp_path: Path
) -> None:
    await provider.upload(make_job(tmp_path, "dev1/requests/one.txt", b"1"), StateLog())
    await provider.upload(make_job(tmp_path, "dev1/requests/one-more.txt", b"1"), StateLog())
    assert emulator.token_requests == 1  # cached by the credential between calls
    emulator.revoke_tokens()
    await provider.upload(make_job(tmp_path, "dev1/requests/two.txt", b"2"), StateLog())
    assert emulator.token_requests == 2
    assert emulator.file_bytes("CloudWatcher/dev1/requests/two.txt") == b"2"


async def test_neither_the_secret_nor_tokens_reach_the_logs(
    provider: SharePointProvider, emulator: GraphEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emulator.drop_next_fragment()
    await provider.upload(make_job(tmp_path, "dev1/requests/quiet.bin", os.urandom(2 * FRAGMENT_SIZE)), StateLog())
    assert emulator.client_secret not in caplog.text
    assert emulator.tokens and not any(token in caplog.text for token in emulator.tokens)


async def test_the_registry_builds_a_sharepoint_provider(emulator: GraphEmulator) -> None:
    built = build_provider(target_for(emulator), concurrency=3)
    try:
        assert isinstance(built, SharePointProvider) and isinstance(built, Provider)
        assert built.name == "sharepoint" and built.case_insensitive
        assert await built.stat("dev1/requests/nothing.txt") is None
    finally:
        await built.close()


async def test_401_after_a_token_refresh_is_permanent(
    provider: SharePointProvider, emulator: GraphEmulator, tmp_path: Path
) -> None:
    emulator.fail_next(401, "InvalidAuthenticationToken", count=2)
    with pytest.raises(PermanentError):
        await provider.upload(make_job(tmp_path, "dev1/requests/denied.txt", b"x"), StateLog())


async def test_a_wrong_client_secret_is_permanent(emulator: GraphEmulator, tmp_path: Path) -> None:
    target = target_for(emulator).model_copy(update={"client_secret": None})
    secret_file = tmp_path / "secret"
    secret_file.write_text("not-the-secret\n")
    provider = SharePointProvider(target.model_copy(update={"client_secret_file": secret_file}))
    try:
        with pytest.raises(PermanentError) as raised:
            await provider.stat("dev1/requests/x.txt")
        assert "not-the-secret" not in str(raised.value)
    finally:
        await provider.close()


async def test_ssl_cert_file_is_trusted_when_the_target_names_no_ca_bundle(
    emulator: GraphEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(emulator.ca_pem))
    provider = SharePointProvider(target_for(emulator).model_copy(update={"ca_bundle": None}))
    try:
        await provider.upload(make_job(tmp_path, "dev1/requests/tls.txt", b"tls"), StateLog())
    finally:
        await provider.close()
    assert emulator.file_bytes("CloudWatcher/dev1/requests/tls.txt") == b"tls"


async def test_an_untrusted_certificate_is_refused(emulator: GraphEmulator, tmp_path: Path) -> None:
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    provider = SharePointProvider(target_for(emulator).model_copy(update={"ca_bundle": other_ca}))
    try:
        with pytest.raises(ProviderError):
            await provider.stat("dev1/requests/x.txt")
    finally:
        await provider.close()
    assert emulator.token_requests == 0


async def test_site_id_resolves_the_default_drive_once(emulator: GraphEmulator, tmp_path: Path) -> None:
    provider = SharePointProvider(target_for(emulator, site=True))
    try:
        await provider.upload(make_job(tmp_path, "dev1/requests/a.txt", b"a"), StateLog())
        await provider.upload(make_job(tmp_path, "dev1/requests/b.txt", b"b"), StateLog())
    finally:
        await provider.close()
    site_calls = [entry for entry in emulator.requests("GET") if entry.path.startswith("/v1.0/sites/")]
    assert [entry.path for entry in site_calls] == [f"/v1.0/sites/{emulator.site_id}/drive"]
    assert emulator.file_bytes("CloudWatcher/dev1/requests/b.txt") == b"b"


async def test_an_existing_folder_is_found_after_409(
    provider: SharePointProvider, emulator: GraphEmulator, tmp_path: Path
) -> None:
    root = emulator.drive.create_folder(emulator.drive.root, "CloudWatcher", "fail")
    emulator.drive.create_folder(root, "DEV1", "fail")  # case-insensitive match for "dev1"
    await provider.upload(make_job(tmp_path, "dev1/requests/c.txt", b"c"), StateLog())
    folder_posts = [entry for entry in emulator.requests("POST") if entry.path.endswith("/children")]
    assert [entry.status for entry in folder_posts] == [409, 409, 201]
    assert emulator.file_bytes("CloudWatcher/DEV1/requests/c.txt") == b"c"


async def test_a_folder_deleted_remotely_is_created_again(
    provider: SharePointProvider, emulator: GraphEmulator, tmp_path: Path
) -> None:
    await provider.upload(make_job(tmp_path, "dev1/requests/before.txt", b"1"), StateLog())
    emulator.drive.delete(emulator.drive.walk(emulator.drive.root, ["CloudWatcher", "dev1"]))
    await provider.upload(make_job(tmp_path, "dev1/requests/after.txt", b"2"), StateLog())
    assert emulator.file_bytes("CloudWatcher/dev1/requests/after.txt") == b"2"


async def test_concurrent_uploads_into_one_new_folder_all_land(
    provider: SharePointProvider, emulator: GraphEmulator, tmp_path: Path
) -> None:
    jobs = [make_job(tmp_path, f"dev2/requests/batch/{number}.txt", str(number).encode()) for number in range(6)]
    results = await asyncio.gather(*(provider.upload(job, StateLog()) for job in jobs))
    assert all(result.verification == "hash" for result in results)
    for number in range(6):
        assert emulator.file_bytes(f"CloudWatcher/dev2/requests/batch/{number}.txt") == str(number).encode()
    assert len(emulator.drive.children(emulator.drive.walk(emulator.drive.root, ["CloudWatcher"]))) == 1


async def test_stat_reports_size_and_quickxorhash(provider: SharePointProvider, tmp_path: Path) -> None:
    await provider.upload(make_job(tmp_path, "dev1/requests/s.txt", b"stat me"), StateLog())
    remote = await provider.stat("dev1/requests/s.txt")
    assert remote is not None
    assert remote.size == 7 and remote.hashes == {"quickxor": quickxorhash(b"stat me")}
    assert await provider.stat("dev1/requests") is None  # a folder is not a file


# ----------------------------------------------------------------------------------- names

NAME_RULE = [
    ("plain.txt", "plain.txt"),
    ("bad:name?.txt", "bad\uff1aname\uff1f.txt"),
    ('a"b*c<d>e\\f|g', "a\uff02b\uff0ac\uff1cd\uff1ee\uff3cf\uff5cg"),
    (" lead", "\u2420lead"),
    ("trail  ", "trail\u2420\u2420"),
    ("ends.", "ends\uff0e"),
    ("~$draft.docx", "_~$draft.docx"),
    ("CON", "CON_"),
    ("con.txt", "con_.txt"),
    ("LPT9.log", "LPT9_.log"),
    ("COM10.txt", "COM10.txt"),
    (".lock", ".lock_"),
    ("desktop.ini", "desktop.ini_"),
    ("my_vti_file", "my_vti\uff3ffile"),
]


@pytest.mark.parametrize(("local", "remote"), NAME_RULE)
def test_name_rule_maps_each_segment(local: str, remote: str) -> None:
    assert sanitize_segment(local) == remote


@pytest.mark.parametrize(("local", "remote"), NAME_RULE)
def test_name_rule_leaves_an_already_mapped_name_alone(local: str, remote: str) -> None:
    # The daemon may hand back a name it got from remote_name (e.g. with a " (2)" suffix).
    assert sanitize_segment(remote) == remote


async def test_every_renamed_name_is_accepted_by_sharepoint(
    provider: SharePointProvider, emulator: GraphEmulator, tmp_path: Path
) -> None:
    for local, remote in NAME_RULE:
        result = await provider.upload(make_job(tmp_path, f"dev1/requests/{local}", b"n"), StateLog())
        assert result.cloud_path == f"CloudWatcher/dev1/requests/{remote}"
        assert emulator.file_bytes(result.cloud_path) == b"n"


def test_remote_name_applies_the_rule_per_segment(provider: SharePointProvider) -> None:
    assert provider.remote_name("dev1/requests/a:b/c?.txt") == "dev1/requests/a\uff1ab/c\uff1f.txt"
    assert provider.case_insensitive is True


async def test_a_path_over_400_characters_is_permanent(provider: SharePointProvider, tmp_path: Path) -> None:
    job = make_job(tmp_path, "dev1/requests/" + "d" * 200 + "/" + "f" * 200 + ".txt", b"x")
    with pytest.raises(PermanentError, match="400"):
        await provider.upload(job, StateLog())


async def test_read_follows_the_download_redirect_without_the_bearer(
    provider: SharePointProvider, emulator: GraphEmulator, tmp_path: Path
) -> None:
    await provider.upload(make_job(tmp_path, "dev1/requests/r.txt", b"read me"), StateLog())
    assert await provider.read("dev1/requests/r.txt") == b"read me"
    downloads = [entry for entry in emulator.requests("GET", host="localhost") if entry.path.startswith("/download/")]
    assert [(entry.status, entry.authorization) for entry in downloads] == [(200, False)]


# ----------------------------------------------------------------------------------- local changes and pacing


@pytest.mark.parametrize("size", [1000, 2 * FRAGMENT_SIZE], ids=["simple", "session"])
async def test_a_file_that_shrank_since_it_was_recorded_is_reported(
    provider: SharePointProvider, emulator: GraphEmulator, tmp_path: Path, size: int
) -> None:
    job = make_job(tmp_path, "dev1/requests/shrank.bin", os.urandom(size))
    job.local_file.write_bytes(b"short now")
    states = StateLog()
    with pytest.raises(FileChangedError):
        await provider.upload(job, states)
    assert emulator.file_bytes("CloudWatcher/dev1/requests/shrank.bin") is None
    assert not emulator.sessions  # a started session is cancelled, not left behind
    assert states.calls[-1:] in ([], [None])


async def test_requests_per_second_paces_every_graph_request(emulator: GraphEmulator, tmp_path: Path) -> None:
    target = target_for(emulator).model_copy(update={"requests_per_second": 5.0})
    provider = SharePointProvider(target)
    try:
        started = time.monotonic()
        for number in range(11):
            await provider.stat(f"dev1/requests/missing-{number}.txt")
        elapsed = time.monotonic() - started
    finally:
        await provider.close()
    assert len(emulator.requests("GET")) == 11  # one request per stat; the token POST is not paced
    assert elapsed >= (11 - 5) / 5.0 * 0.9  # a burst of 5, then 5 per second


async def test_bandwidth_limit_paces_the_bytes_sent(emulator: GraphEmulator, tmp_path: Path) -> None:
    target = target_for(emulator).model_copy(update={"bandwidth_limit": 4 * 1024 * 1024})
    provider = SharePointProvider(target)
    data = os.urandom(3 * FRAGMENT_SIZE)  # 9.4 MiB at 4 MiB/s with a 4 MiB burst: at least 1.3 s
    try:
        started = time.monotonic()
        await provider.upload(make_job(tmp_path, "dev1/requests/paced.bin", data), StateLog())
        elapsed = time.monotonic() - started
    finally:
        await provider.close()
    assert elapsed >= (len(data) - 4 * 1024 * 1024) / (4 * 1024 * 1024) * 0.9
    assert emulator.file_bytes("CloudWatcher/dev1/requests/paced.bin") == data
