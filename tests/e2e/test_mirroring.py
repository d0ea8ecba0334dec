"""The daemon as a subprocess on a real PostgreSQL, dropping real files, reading the mirror."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.daemon_process import DaemonProcess

pytestmark = pytest.mark.slow
Daemon = Callable[..., DaemonProcess]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mixed_sizes(count: int, rng: random.Random) -> list[int]:
    """Mostly small files, some medium, a few tens of MB (and the empty file)."""
    sizes = [0, 1, 320 * 1024, 4 * 1024 * 1024 + 1, 24 * 1024 * 1024]
    while len(sizes) < count:
        sizes.append(rng.choice([rng.randint(1, 4096)] * 8 + [rng.randint(4096, 2 * 1024 * 1024)]))
    return sizes


async def test_hundreds_of_mixed_files_are_synced_byte_identical(daemon: Daemon) -> None:
    rng = random.Random(7)
    d = daemon().start()
    names = []
    for index, size in enumerate(mixed_sizes(300, rng)):
        device = f"truck-{index % 7:03d}"
        folder = ["", "photos/", "deep/er/still/", "Übergabe Protokoll/"][index % 4]
        name = f"{device}/requests/{folder}file {index} é.bin"
        d.drop(name, rng.randbytes(size), old=index % 2 == 0)
        names.append(name)
    await d.wait_synced(len(names), timeout=180)
    for name in names:
        assert sha(d.mirror / name) == sha(d.watch_root / name), name
    rows = await d.query(
        "SELECT local_path, content_sha256, cloud_path, remote_hash, verification FROM cloud_file_refs"
    )
    assert len(rows) == len(names)
    for row in rows:
        assert row["content_sha256"] == sha(d.watch_root / row["local_path"])
        assert row["remote_hash"] == f"sha256:{row['content_sha256']}"
        assert row["verification"] == "hash"
        assert Path(row["cloud_path"]) == d.mirror / row["local_path"]
    assert d.stop() == 0


async def test_files_dropped_while_stopped_are_synced_after_start(daemon: Daemon) -> None:
    d = daemon()
    for index in range(20):
        d.drop(f"van-{index % 2}/requests/offline-{index}.txt", f"written while down {index}".encode())
    d.start()
    await d.wait_synced(20)
    assert (d.mirror / "van-1/requests/offline-19.txt").read_text() == "written while down 19"
    assert d.stop() == 0


async def test_changed_file_gets_a_new_row_and_the_old_row_stays(daemon: Daemon) -> None:
    d = daemon().start()
    d.drop("truck-1/requests/log.txt", b"version one")
    await d.wait_synced(1)
    d.drop("truck-1/requests/log.txt", b"version two, longer")
    await d.wait_synced(2)
    rows = await d.query("SELECT content_sha256, sync_status FROM cloud_file_refs ORDER BY created_at")
    assert [row["content_sha256"] for row in rows] == [
        hashlib.sha256(b"version one").hexdigest(),
        hashlib.sha256(b"version two, longer").hexdigest(),
    ]
    assert (d.mirror / "truck-1/requests/log.txt").read_bytes() == b"version two, longer"
    assert d.stop() == 0


async def test_file_still_being_written_is_recorded_once_it_settles(daemon: Daemon) -> None:
    d = daemon(settle_seconds=1.0).start()
    path = d.watch_root / "truck-1/requests/slow-writer.bin"
    path.parent.mkdir(parents=True)
    with path.open("wb") as writer:
        for _ in range(6):
            writer.write(b"x" * 1000)
            writer.flush()
            await asyncio.sleep(0.3)
    await d.wait_synced(1)
    rows = await d.query("SELECT file_size_bytes FROM cloud_file_refs")
    assert [row["file_size_bytes"] for row in rows] == [6000]
    assert d.stop() == 0


async def test_ignored_names_links_and_foreign_folders_get_no_rows(daemon: Daemon) -> None:
    d = daemon().start()
    d.drop("truck-1/requests/kept.txt", b"kept")
    for name in [".hidden", "~lock", "a.tmp", "b.part", "c.partial", "d.swp", "e.crdownload"]:
        target = d.watch_root / "truck-1/requests" / name
        target.write_bytes(b"in progress")
    (d.watch_root / "truck-1/requests/link.txt").symlink_to(d.watch_root / "truck-1/requests/kept.txt")
    (d.watch_root / "not a device!").mkdir()
    (d.watch_root / "not a device!/requests").mkdir()
    (d.watch_root / "not a device!/requests/x.txt").write_bytes(b"never")
    (d.watch_root / "truck-1/other").mkdir()
    (d.watch_root / "truck-1/other/y.txt").write_bytes(b"never")
    await d.wait_synced(1)
    await asyncio.sleep(1.0)
    rows = await d.query("SELECT local_path FROM cloud_file_refs")
    assert [row["local_path"] for row in rows] == ["truck-1/requests/kept.txt"]
    assert not (d.mirror / "truck-1/requests/link.txt").exists()
    assert d.stop() == 0
    assert "skipping truck-1/requests/link.txt: a symbolic link" in d.log()


async def test_failing_target_recovers_through_the_scheduled_retry(daemon: Daemon) -> None:
    d = daemon()
    d.mirror.write_bytes(b"")  # a file where the mirror folder should be: every upload fails
    d.start()
    d.drop("truck-1/requests/a.txt", b"a")
    d.drop("truck-1/requests/b.txt", b"b")

    async def failed_with_reason() -> bool:
        rows = await d.query("SELECT sync_status, last_error, next_attempt_at FROM cloud_file_refs")
        return len(rows) == 2 and all(
            r["sync_status"] == "failed" and r["last_error"] and r["next_attempt_at"] is not None for r in rows
        )

    await d.wait_for(failed_with_reason, 30, "failed rows with a reason")
    d.mirror.unlink()
    await d.wait_synced(2, timeout=30)
    rows = await d.query("SELECT attempts FROM cloud_file_refs")
    assert all(row["attempts"] >= 2 for row in rows)
    assert (d.mirror / "truck-1/requests/b.txt").read_bytes() == b"b"
    assert d.stop() == 0


async def test_rows_that_gave_up_are_requeued_by_the_retry_command(daemon: Daemon) -> None:
    d = daemon(
        retry={
            "initial_delay_seconds": 0.2,
            "max_delay_seconds": 0.5,
            "max_attempts": 2,
            "interval_seconds": 0.3,
        }
    )
    d.mirror.write_bytes(b"")
    d.start()
    d.drop("truck-1/requests/a.txt", b"a")

    async def gave_up() -> bool:
        rows = await d.query("SELECT sync_status, attempts, next_attempt_at FROM cloud_file_refs")
        return len(rows) == 1 and rows[0]["sync_status"] == "failed" and rows[0]["next_attempt_at"] is None

    await d.wait_for(gave_up, 30, "the row to give up")
    status = d.command("status", "--json")
    assert '"gave_up": 1' in status.stdout
    d.mirror.unlink()
    await asyncio.sleep(1.0)
    assert (await d.status_counts()) == {"failed": 1}  # gave up: nothing retries it on its own
    ref_id = (await d.query("SELECT id FROM cloud_file_refs"))[0]["id"]
    result = d.command("retry", str(ref_id))
    assert "re-queued 1" in result.stdout
    await d.wait_synced(1, timeout=30)
    assert d.stop() == 0


async def test_sigterm_exits_zero_and_leaves_no_uploading_rows(daemon: Daemon) -> None:
    d = daemon().start()
    for index in range(200):
        d.drop(f"truck-{index % 4}/requests/f{index}.bin", os.urandom(20_000))
    await d.wait_for(lambda: _some_synced(d), 60, "first synced rows")
    assert d.stop(timeout=12) == 0
    counts = await d.status_counts()
    assert counts.get("uploading", 0) == 0
    d.start()
    await d.wait_started()
    await d.wait_synced(200)
    assert d.stop() == 0


async def _some_synced(d: DaemonProcess) -> bool:
    return (await d.status_counts()).get("synced", 0) > 0


async def test_kill_9_mid_burst_then_restart_syncs_every_file_exactly_once(daemon: Daemon) -> None:
    d = daemon().start()
    await d.wait_for(lambda: _instance_registered(d), 30, "daemon start")
    # Invalid envelopes on purpose: each must get exactly one request row and one response.
    files = {f"truck-{i % 20:02d}/requests/burst/{i}.json": os.urandom(1500) for i in range(2000)}
    for name, data in files.items():
        d.drop(name, data)
    await d.wait_for(lambda: _some_synced(d), 60, "first synced rows")
    d.kill()
    d.start()
    await d.wait_synced(2 * len(files), timeout=180)  # every request file and its response
    rows = await d.query(
        "SELECT local_path, count(*) AS n, min(content_sha256) AS sha FROM cloud_file_refs "
        "WHERE local_path LIKE '%/requests/%' GROUP BY local_path"
    )
    assert len(rows) == len(files)
    assert all(row["n"] == 1 for row in rows)
    for row in rows:
        assert row["sha"] == hashlib.sha256(files[row["local_path"]]).hexdigest()
        assert (d.mirror / row["local_path"]).read_bytes() == files[row["local_path"]]
    requests = await d.query("SELECT local_path, count(*) AS n FROM requests GROUP BY local_path")
    assert len(requests) == len(files) and all(row["n"] == 1 for row in requests)
    responses = await d.query("SELECT count(*) AS n FROM cloud_file_refs WHERE file_type = 'response'")
    assert responses[0]["n"] == len(files)
    leftovers = [p for p in d.mirror.rglob("*") if p.name.endswith(".tmp")]
    assert d.stop() == 0
    assert len(leftovers) <= 4  # a kill -9 can strand at most the temp files being written then


async def _instance_registered(d: DaemonProcess) -> bool:
    try:
        return bool(await d.query("SELECT 1 FROM instances"))
    except Exception:
        return False


async def test_vanished_file_fails_with_its_reason_and_gives_up(daemon: Daemon) -> None:
    d = daemon()
    d.mirror.write_bytes(b"")  # hold the upload back so the file can vanish in between
    d.start()
    path = d.drop("truck-1/requests/gone.txt", b"soon gone")

    async def recorded() -> bool:
        return bool(await d.query("SELECT 1 FROM cloud_file_refs"))

    await d.wait_for(recorded, 30, "the file to be recorded")
    path.unlink()
    d.mirror.unlink()

    async def gave_up() -> bool:
        rows = await d.query("SELECT sync_status, last_error, next_attempt_at FROM cloud_file_refs")
        return rows[0]["sync_status"] == "failed" and rows[0]["next_attempt_at"] is None

    await d.wait_for(gave_up, 30, "the vanished file to give up")
    rows = await d.query("SELECT last_error FROM cloud_file_refs")
    assert "no longer exists" in rows[0]["last_error"]
    assert d.stop() == 0


def test_bad_configuration_exits_2_naming_the_key(tmp_path: Path) -> None:
    import subprocess
    import sys

    config = tmp_path / "bad.toml"
    config.write_text('settle_seconds = "soon"\n')
    result = subprocess.run(
        [sys.executable, "-m", "cloudwatcher", "status", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "settle_seconds" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    shutil.rmtree(tmp_path, ignore_errors=True)


async def test_content_changed_back_is_uploaded_again_and_a_touch_is_harmless(daemon: Daemon) -> None:
    d = daemon().start()
    d.drop("truck-1/requests/state.txt", b"A")
    await d.wait_synced(1)
    d.drop("truck-1/requests/state.txt", b"B")
    await d.wait_synced(2)
    d.drop("truck-1/requests/state.txt", b"A")

    async def mirror_holds_a() -> bool:
        counts = await d.status_counts()
        return (d.mirror / "truck-1/requests/state.txt").read_bytes() == b"A" and counts == {"synced": 2}

    await d.wait_for(mirror_holds_a, 30, "content A in the mirror again")
    path = d.watch_root / "truck-1/requests/state.txt"
    os.utime(path, (1_000_000_000, 1_000_000_000))  # touched: same bytes, new mtime
    await asyncio.sleep(1.0)
    assert await d.status_counts() == {"synced": 2}
    assert d.stop() == 0


def test_a_target_that_cannot_be_built_exits_2_naming_it(daemon: Daemon, tmp_path: Path) -> None:
    d = daemon(targets=[{"name": "cold", "provider": "s3", "bucket": "b", "ca_bundle": str(tmp_path / "missing.pem")}])
    result = d.command("run", check=False)
    assert result.returncode == 2
    assert "targets[0] (cold)" in result.stderr


async def test_files_json_lists_every_ledger_column_newest_first_with_filters(daemon: Daemon) -> None:
    import json

    d = daemon().start()
    d.drop("truck-1/requests/old.txt", b"old")
    await d.wait_synced(1)
    d.drop("truck-2/requests/new.txt", b"new")
    await d.wait_synced(2)
    rows = json.loads(d.command("files", "--json").stdout)
    assert [row["local_path"] for row in rows] == ["truck-2/requests/new.txt", "truck-1/requests/old.txt"]
    expected = {
        "id", "ref_id", "target", "local_path", "content_sha256", "attempts", "last_error", "next_attempt_at",
        "remote_id", "remote_size", "remote_hash", "verification", "updated_at", "sync_status", "cloud_path",
        "uploaded_at", "request_id", "response_id", "file_type", "cloud_provider", "file_size_bytes", "created_at",
    }  # fmt: skip
    assert expected <= set(rows[0])
    assert "T" in rows[0]["uploaded_at"]  # ISO 8601, as /status
    only = json.loads(d.command("files", "--json", "--device", "truck-1", "--status", "synced").stdout)
    assert [row["local_path"] for row in only] == ["truck-1/requests/old.txt"]
    assert json.loads(d.command("files", "--json", "--limit", "1").stdout)[0]["local_path"].endswith("new.txt")
    bad = d.command("files", "--status", "lost", check=False)
    assert bad.returncode == 2 and "--status" in bad.stderr
    assert d.stop() == 0
