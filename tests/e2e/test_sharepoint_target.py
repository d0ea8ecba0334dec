"""Field hardening against the Graph emulator, through the daemon subprocess (docs/providers.md, Microsoft Graph).

SharePoint's own rewrites end ``server-modified`` after one upload, case variants never
overwrite each other, a full library marks the target full and gives up at once until
``cloudwatcher retry``, a file appended to during its upload gets its own row, and
``requests_per_second`` holds in the emulator's request timestamps.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from cloudwatcher.daemon.upload.target_state import target_states
from cloudwatcher.providers.sharepoint.quickxorhash import quickxorhash
from tests.support.daemon_process import DaemonProcess
from tests.support.emulators.graph import GraphEmulator

pytestmark = pytest.mark.slow
Daemon = Callable[..., DaemonProcess]
ROOT = "CloudWatcher"


@pytest.fixture
def graph(tmp_path: Path) -> Iterator[GraphEmulator]:
    with GraphEmulator(tmp_path) as emulator:
        yield emulator


def sharepoint_target(emulator: GraphEmulator, **extra: Any) -> dict[str, Any]:
    return {
        "name": "sharepoint",
        "provider": "sharepoint",
        "tenant_id": emulator.tenant_id,
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
        "drive_id": emulator.drive_id,
        "root": ROOT,
        "graph_url": emulator.graph_url,
        "authority_url": emulator.authority_url,
        "ca_bundle": str(emulator.ca_pem),
        **extra,
    }


def uploads_of(emulator: GraphEmulator, name: str) -> int:
    """Simple PUTs and upload sessions started for a file called ``name``."""
    return sum(
        1
        for entry in emulator.requests()
        if entry.path.endswith((f"/{name}:/content", f"/{name}:/createUploadSession"))
        and entry.method in ("PUT", "POST")
    )


async def test_a_file_sharepoint_rewrites_is_synced_server_modified_after_one_upload(
    daemon: Daemon, graph: GraphEmulator
) -> None:
    graph.rewrite_on_upload(".docx", ".pdf")
    d = daemon(targets=[sharepoint_target(graph)]).start()
    small = d.drop("truck-1/requests/report.docx", os.urandom(10_000))
    large = d.drop("truck-1/requests/manual.pdf", os.urandom(5 * 1024 * 1024 + 17))  # an upload session
    plain = d.drop("truck-1/requests/notes.txt", b"left as sent")
    await d.wait_synced(3, timeout=90)
    await asyncio.sleep(1.5)  # a loop would show up as more uploads by now
    rows = {
        row["local_path"]: row
        for row in await d.query(
            "SELECT local_path, attempts, verification, remote_size, remote_hash, file_size_bytes FROM cloud_file_refs"
        )
    }
    for path, name in ((small, "report.docx"), (large, "manual.pdf")):
        row = rows[f"truck-1/requests/{name}"]
        stored = graph.file_bytes(f"{ROOT}/truck-1/requests/{name}")
        assert stored is not None and stored != path.read_bytes()
        assert row["verification"] == "server-modified"
        assert row["attempts"] == 1
        assert row["remote_size"] == len(stored) != row["file_size_bytes"]
        assert row["remote_hash"] == f"quickxor:{quickxorhash(stored)}"
        assert uploads_of(graph, name) == 1
    assert rows["truck-1/requests/notes.txt"]["verification"] == "hash"
    assert graph.file_bytes(f"{ROOT}/truck-1/requests/notes.txt") == plain.read_bytes()
    assert d.stop() == 0


async def test_a_same_size_hash_mismatch_on_a_plain_file_is_server_modified_after_one_upload(
    daemon: Daemon, graph: GraphEmulator
) -> None:
    # No list of types and no size rule: after a complete, acknowledged upload any other hash
    # is the library's doing, and uploading again would only meet it again.
    graph.report_wrong_hash(count=1000)
    d = daemon(
        targets=[sharepoint_target(graph)],
        retry={"initial_delay_seconds": 0.2, "max_delay_seconds": 0.5, "max_attempts": 2, "interval_seconds": 0.3},
    ).start()
    d.drop("truck-1/requests/data.bin", os.urandom(2000))
    await d.wait_synced(1, timeout=60)
    (row,) = await d.query("SELECT attempts, verification, last_error FROM cloud_file_refs")
    assert (row["attempts"], row["verification"], row["last_error"]) == (1, "server-modified", None)
    assert uploads_of(graph, "data.bin") == 1
    assert d.stop() == 0


async def test_names_differing_only_by_case_are_both_kept_remotely(daemon: Daemon, graph: GraphEmulator) -> None:
    d = daemon(targets=[sharepoint_target(graph)]).start()
    d.drop("truck-1/requests/A.txt", b"upper case first")
    await d.wait_synced(1)
    d.drop("truck-1/requests/a.txt", b"lower case later")
    await d.wait_synced(2)
    assert graph.file_bytes(f"{ROOT}/truck-1/requests/A.txt") == b"upper case first"
    assert graph.file_bytes(f"{ROOT}/truck-1/requests/a (2).txt") == b"lower case later"
    rows = {
        r["local_path"]: r["cloud_path"] for r in await d.query("SELECT local_path, cloud_path FROM cloud_file_refs")
    }
    assert rows["truck-1/requests/A.txt"] == f"{ROOT}/truck-1/requests/A.txt"
    assert rows["truck-1/requests/a.txt"] == f"{ROOT}/truck-1/requests/a (2).txt"
    # A new version of the later file keeps its suffixed name; the first file is untouched.
    d.drop("truck-1/requests/a.txt", b"lower case, second version")
    await d.wait_synced(3)
    assert graph.file_bytes(f"{ROOT}/truck-1/requests/a (2).txt") == b"lower case, second version"
    assert graph.file_bytes(f"{ROOT}/truck-1/requests/A.txt") == b"upper case first"
    assert d.stop() == 0


async def test_names_that_sanitise_alike_get_a_suffix(daemon: Daemon, graph: GraphEmulator) -> None:
    d = daemon(targets=[sharepoint_target(graph)]).start()
    d.drop("truck-1/requests/what?.txt", b"ascii question mark")
    await d.wait_synced(1)
    d.drop("truck-1/requests/what\uff1f.txt", b"fullwidth question mark")
    await d.wait_synced(2)
    assert graph.file_bytes(f"{ROOT}/truck-1/requests/what\uff1f.txt") == b"ascii question mark"
    assert graph.file_bytes(f"{ROOT}/truck-1/requests/what\uff1f (2).txt") == b"fullwidth question mark"
    assert d.stop() == 0


async def test_an_over_long_remote_path_fails_at_once(daemon: Daemon, graph: GraphEmulator) -> None:
    d = daemon(targets=[sharepoint_target(graph)]).start()
    d.drop("truck-1/requests/" + "/".join(["folder-" + "x" * 60] * 6) + "/deep.txt", b"too deep")

    async def gave_up() -> bool:
        rows = await d.query("SELECT sync_status, next_attempt_at, attempts, last_error FROM cloud_file_refs")
        return len(rows) == 1 and rows[0]["sync_status"] == "failed" and rows[0]["next_attempt_at"] is None

    await d.wait_for(gave_up, 30, "the over-long path to give up")
    (row,) = await d.query("SELECT attempts, last_error FROM cloud_file_refs")
    assert row["attempts"] == 1 and "longer than 400" in row["last_error"]
    assert d.stop() == 0


async def test_a_full_library_gives_up_at_once_marks_the_target_full_and_retry_resumes(
    daemon: Daemon, graph: GraphEmulator
) -> None:
    graph.fail_next(507, "insufficientStorage", count=1000, where="any")
    d = daemon(targets=[sharepoint_target(graph)]).start()
    d.drop("truck-1/requests/a.txt", b"a")
    d.drop("truck-1/requests/b.txt", b"b")

    async def both_gave_up() -> bool:
        rows = await d.query("SELECT sync_status, next_attempt_at FROM cloud_file_refs")
        return len(rows) == 2 and all(r["sync_status"] == "failed" and r["next_attempt_at"] is None for r in rows)

    await d.wait_for(both_gave_up, 30, "both rows to give up")
    rows = await d.query("SELECT attempts, last_error FROM cloud_file_refs")
    assert all(r["attempts"] == 1 and "insufficientStorage" in r["last_error"] for r in rows)
    connection = await asyncpg.connect(d.database_url)
    try:
        states = await target_states(connection)
        assert states["sharepoint"]["state"] == "full"
        assert "insufficientStorage" in (states["sharepoint"]["reason"] or "")
        graph.clear_faults()  # space was freed
        assert "re-queued 2" in d.command("retry", "--all").stdout
        await d.wait_synced(2, timeout=30)
        assert (await target_states(connection))["sharepoint"]["state"] == "ok"
        events = [
            r["event"] for r in await connection.fetch("SELECT event FROM notification_events ORDER BY created_at")
        ]
        assert events.count("target.full") == 1 and events.count("file.gave_up") == 2
        assert events[-1] == "target.recovered"
    finally:
        await connection.close()
    assert d.stop() == 0


async def uploading_slowly(daemon: Daemon, graph: GraphEmulator, local_path: str) -> tuple[DaemonProcess, Path, bytes]:
    """A daemon sending an 8 MiB file at 2 MiB/s (about four seconds), once its upload has begun."""
    d = daemon(targets=[sharepoint_target(graph, bandwidth_limit="2M")]).start()
    first = os.urandom(8 * 1024 * 1024)
    path = d.drop(local_path, first)

    async def uploading() -> bool:
        return any(entry.host == "localhost" and entry.method == "PUT" for entry in graph.requests())

    await d.wait_for(uploading, 30, "the upload to start")
    return d, path, first


async def test_a_file_appended_to_during_its_upload_gets_its_own_row(daemon: Daemon, graph: GraphEmulator) -> None:
    # 2 MiB/s makes an 8 MiB upload take about four seconds: time to append in the middle of it.
    d, path, first = await uploading_slowly(daemon, graph, "truck-1/requests/growing.log")
    with path.open("ab") as writer:
        writer.write(b"appended while uploading\n")
    await d.wait_for(lambda: _two_rows_settled(d), 90, "the old row failed and the new one synced")
    rows = await d.query(
        "SELECT content_sha256, sync_status, last_error, next_attempt_at FROM cloud_file_refs ORDER BY created_at"
    )
    old, new = rows
    assert old["content_sha256"] == hashlib.sha256(first).hexdigest()
    assert old["sync_status"] == "failed" and old["next_attempt_at"] is None and "changed" in old["last_error"]
    assert new["content_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert graph.file_bytes(f"{ROOT}/truck-1/requests/growing.log") == path.read_bytes()
    assert not graph.sessions  # the abandoned session was cancelled
    events = await d.query("SELECT event FROM notification_events")
    assert events == []  # a changed file is not a give-up worth announcing
    assert d.stop() == 0


async def _two_rows_settled(d: DaemonProcess) -> bool:
    rows = await d.query("SELECT sync_status FROM cloud_file_refs ORDER BY created_at")
    return [row["sync_status"] for row in rows] == ["failed", "synced"]


async def test_requests_per_second_holds_in_the_emulators_timestamps(daemon: Daemon, graph: GraphEmulator) -> None:
    rate = 5.0
    d = daemon(targets=[sharepoint_target(graph, requests_per_second=rate)], upload_concurrency=4).start()
    for index in range(15):
        d.drop(f"truck-1/requests/paced-{index}.txt", f"file {index}".encode())
    await d.wait_synced(15, timeout=90)
    stamps = sorted(entry.at for entry in graph.requests() if "/oauth2/" not in entry.path)
    assert len(stamps) >= 15
    burst = max(1.0, rate)
    # A token bucket of `rate` per second holding `burst` tokens: n requests need at least
    # (n - burst) / rate seconds (unpaced, these take well under a second), and any window of
    # w seconds holds at most burst + rate * w. The emulator stamps a request when it answers,
    # so an emulator thread stalled for s seconds (a busy test machine) bunches up to rate * s
    # more into a window: windows under two seconds are not judged, and a second's worth plus
    # two requests is slack.
    assert stamps[-1] - stamps[0] >= (len(stamps) - burst - 2) / rate - 1.0
    for first, start in enumerate(stamps):
        for last in range(first, len(stamps)):
            window = stamps[last] - start
            if window >= 2.0:
                assert last - first + 1 <= burst + rate * (window + 1.0) + 2, (first, last, window)
    assert d.stop() == 0


async def test_a_target_that_keeps_failing_is_marked_failing_then_recovered(
    daemon: Daemon, graph: GraphEmulator
) -> None:
    graph.fail_next(503, "serviceNotAvailable", count=100_000, where="any")
    d = daemon(
        targets=[sharepoint_target(graph)],
        retry={"initial_delay_seconds": 0.2, "max_delay_seconds": 0.5, "max_attempts": 50, "interval_seconds": 0.3},
    ).start()
    d.drop("truck-1/requests/a.txt", b"a")
    d.drop("truck-1/requests/b.txt", b"b")
    connection = await asyncpg.connect(d.database_url)
    try:

        async def failing() -> bool:
            state = (await target_states(connection)).get("sharepoint")
            return state is not None and state["state"] == "failing"

        await d.wait_for(failing, 60, "the target to be marked failing")
        assert "serviceNotAvailable" in ((await target_states(connection))["sharepoint"]["reason"] or "")
        graph.clear_faults()
        await d.wait_synced(2, timeout=30)
        assert (await target_states(connection))["sharepoint"]["state"] == "ok"
        events = [
            r["event"] for r in await connection.fetch("SELECT event FROM notification_events ORDER BY created_at")
        ]
        assert events == ["target.failing", "target.recovered"]
    finally:
        await connection.close()
    assert d.stop() == 0


async def test_a_file_cut_short_during_its_upload_cancels_the_session(daemon: Daemon, graph: GraphEmulator) -> None:
    d, path, first = await uploading_slowly(daemon, graph, "truck-1/requests/shrinking.bin")
    with path.open("r+b") as writer:
        writer.truncate(1024 * 1024)  # rewritten shorter, in place, while its upload runs
    await d.wait_for(lambda: _two_rows_settled(d), 90, "the old row failed and the new one synced")
    old, _ = await d.query("SELECT last_error, next_attempt_at FROM cloud_file_refs ORDER BY created_at")
    assert "changed" in old["last_error"] or "shrank" in old["last_error"]
    assert old["next_attempt_at"] is None
    assert any(entry.method == "DELETE" and entry.host == "localhost" for entry in graph.requests())
    assert not graph.sessions
    assert graph.file_bytes(f"{ROOT}/truck-1/requests/shrinking.bin") == first[: 1024 * 1024]
    assert d.stop() == 0
