"""Several daemons on one database (docs/architecture.md, Several daemons on one database): nothing happens twice."""

from __future__ import annotations

import array
import asyncio
import fcntl
import json
import os
import signal
import termios
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.daemon_process import DaemonProcess
from tests.support.net import free_port

pytestmark = pytest.mark.slow
Daemon = Callable[..., DaemonProcess]
CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog.json"


def shared_root(first: DaemonProcess, second: DaemonProcess) -> None:
    """Point ``second`` at ``first``'s watch root and mirror."""
    second.watch_root = first.watch_root
    second.mirror = first.mirror
    second.settings["watch_root"] = str(first.watch_root)
    second.settings["targets"] = first.settings["targets"]
    from tests.support.daemon_process import write_config

    write_config(second.config, second.settings)


async def test_two_daemons_on_one_shared_root_record_upload_and_apply_everything_once(daemon: Daemon) -> None:
    a, b = daemon(), daemon()
    shared_root(a, b)
    a.command("load", str(CATALOG))
    a.start()
    b.start()
    await a.wait_started()
    await b.wait_started()
    files = {f"truck-{i % 10:02d}/requests/photos/{i}.bin": os.urandom(1200) for i in range(2000)}
    for index in range(200):
        envelope = {
            "type": "get_parts",
            "user": "rita.kowalski@northwind-fleet.example",
            "payload": {"location": "North Depot"},
            "metadata": {"sequence": index},
        }
        files[f"truck-{index % 10:02d}/requests/env/{index}.json"] = json.dumps(envelope).encode()
    for name, data in files.items():
        a.drop(name, data)
    try:
        await a.wait_synced(len(files) + 200, timeout=180)  # every file, plus one response per envelope
    except AssertionError as timed_out:  # say where the rows are and what the other daemon did
        counts = await a.query("SELECT sync_status, file_type, count(*) FROM cloud_file_refs GROUP BY 1, 2")
        raise AssertionError(f"{timed_out}\nledger: {[tuple(row) for row in counts]}\nB:\n{b.log()[-4000:]}") from None
    duplicates = await a.query(
        "SELECT local_path, count(*) AS n FROM cloud_file_refs GROUP BY local_path HAVING count(*) > 1"
    )
    assert duplicates == []
    requests = await a.query("SELECT local_path, count(*) AS n FROM requests GROUP BY local_path")
    assert len(requests) == 200 and all(row["n"] == 1 for row in requests)
    uploaders = await a.query("SELECT uploaded_by, count(*) AS n FROM cloud_file_refs GROUP BY uploaded_by")
    assert len(uploaders) == 2, "both instances did part of the uploads"
    instances = json.loads(a.command("status", "--json").stdout)["instances"]
    assert len(instances) == 2 and not any(instance["stale"] for instance in instances)
    assert a.stop() == 0 and b.stop() == 0


async def test_two_daemons_with_separate_roots_each_take_their_own_devices(daemon: Daemon) -> None:
    a, b = daemon(), daemon()
    a.start()
    b.start()
    await a.wait_started()
    await b.wait_started()
    for index in range(50):
        a.drop(f"truck-a/requests/{index}.txt", f"a{index}".encode())
        b.drop(f"truck-b/requests/{index}.txt", f"b{index}".encode())
    await a.wait_synced(100, timeout=90)
    assert sorted(p.name for p in (a.mirror / "truck-a/requests").iterdir()) == sorted(f"{i}.txt" for i in range(50))
    assert sorted(p.name for p in (b.mirror / "truck-b/requests").iterdir()) == sorted(f"{i}.txt" for i in range(50))
    assert not (a.mirror / "truck-b").exists() and not (b.mirror / "truck-a").exists()
    assert a.stop() == 0 and b.stop() == 0


async def test_a_killed_instances_claims_are_finished_by_the_other(daemon: Daemon) -> None:
    a, b = daemon(), daemon()
    shared_root(a, b)
    a.start()
    await a.wait_started()
    files = {f"truck-{i % 5}/requests/{i}.bin": os.urandom(50_000) for i in range(1500)}
    for name, data in files.items():
        a.drop(name, data)

    async def a_is_uploading() -> bool:
        return (await a.status_counts()).get("uploading", 0) > 0

    await a.wait_for(a_is_uploading, 60, "uploads in flight")
    a.kill()
    b.start()
    await b.wait_synced(len(files), timeout=120)
    rows = await b.query("SELECT local_path FROM cloud_file_refs")
    assert len(rows) == len(files)
    for name, data in list(files.items())[:50]:
        assert (b.mirror / name).read_bytes() == data
    assert b.stop() == 0


async def test_cluster_jobs_run_once_per_period_across_instances(daemon: Daemon) -> None:
    retry = {"initial_delay_seconds": 0.5, "max_delay_seconds": 1, "max_attempts": 3, "interval_seconds": 1.0}
    a, b = daemon(retry=retry), daemon(retry=retry)
    shared_root(a, b)
    a.start()
    b.start()
    await a.wait_started()
    await b.wait_started()
    before = {row["name"]: row["runs"] for row in await a.query("SELECT name, runs FROM cluster_job_runs")}
    started = time.monotonic()
    await asyncio.sleep(6.0)
    elapsed = time.monotonic() - started
    rows = await a.query("SELECT name, runs, instance_id FROM cluster_job_runs")
    runs = {row["name"]: row["runs"] - before.get(row["name"], 0) for row in rows}
    # Two instances, each scheduling every period: without the cluster rule about twice as many.
    assert 1 <= runs["retry-requeue"] <= elapsed / 1.0 / 0.9 + 1
    assert 1 <= runs["response-delivery"] <= elapsed / 2.0 / 0.9 + 1
    assert a.stop() == 0 and b.stop() == 0


def claims_lost(port: int) -> float:
    """``cloudwatcher_claims_lost_total{target="local"}`` from a daemon's ``GET /metrics``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "cloudwatcher_claims_lost_total" and sample.labels == {"target": "local"}:
                return float(sample.value)
    return 0.0


def bytes_waiting(fifo_reader: int) -> int:
    """Bytes written into a FIFO and not yet read (FIONREAD)."""
    waiting = array.array("i", [0])
    fcntl.ioctl(fifo_reader, termios.FIONREAD, waiting, True)
    return waiting[0]


async def test_a_daemon_paused_past_its_lease_changes_nothing_and_uploads_nothing_the_other_took(
    daemon: Daemon,
) -> None:
    """Daemon A claims six rows and stalls (SIGSTOP) mid-upload; B takes the rows once A's leases
    run out and uploads them; A resumes (SIGCONT): its write-backs change nothing, it uploads
    none of them again (B's copies stand), and it counts and logs the claims it lost."""
    port = free_port()
    a = daemon(upload_concurrency=1, http_bind=f"127.0.0.1:{port}")  # one slot: R0 holds it
    b = daemon()
    shared_root(a, b)
    a.start()
    await a.wait_started()
    assert a.process is not None
    a_pid = a.process.pid
    # A's upload of big.bin is held mid-write: the local provider writes to a temp file named
    # after the daemon's pid, and a FIFO stands there; reading nothing, the test keeps A blocked.
    big = "truck-1/requests/big.bin"
    folder = a.mirror / "truck-1/requests"
    folder.mkdir(parents=True)
    fifo = folder / f".big.bin.cloudwatcher-{a_pid}.tmp"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    stopped = False
    try:
        files = {big: os.urandom(1024 * 1024)}
        a.drop(big, files[big])

        async def a_is_writing_big() -> bool:
            return bytes_waiting(reader) > 0

        await a.wait_for(a_is_writing_big, 60, "A to be uploading big.bin")
        for index in range(5):  # claimed by A too, waiting for its one upload slot
            name = f"truck-1/requests/small-{index}.txt"
            files[name] = f"small {index}".encode()
            a.drop(name, files[name])
        (a_id,) = [row["id"] for row in await a.query("SELECT id FROM instances WHERE pid = $1", a_pid)]

        async def a_holds_every_row() -> bool:
            rows = await a.query("SELECT sync_status, claimed_by FROM cloud_file_refs")
            return len(rows) == len(files) and all(
                (row["sync_status"], row["claimed_by"]) == ("uploading", a_id) for row in rows
            )

        await a.wait_for(a_holds_every_row, 60, "A to hold a claim on every row")
        os.kill(a_pid, signal.SIGSTOP)
        stopped = True

        b.start()
        await b.wait_synced(len(files), timeout=120)  # after A's leases ran out
        (b_id,) = [row["id"] for row in await b.query("SELECT id FROM instances WHERE id <> $1", a_id)]
        ledger_by_b = [tuple(row) for row in await b.query("SELECT * FROM cloud_file_refs ORDER BY local_path")]
        assert {row["uploaded_by"] for row in await b.query("SELECT uploaded_by FROM cloud_file_refs")} == {b_id}
        copies_by_b = {name: os.stat(b.mirror / name) for name in files}
        for name, data in files.items():
            assert (b.mirror / name).read_bytes() == data

        os.kill(a_pid, signal.SIGCONT)
        stopped = False
        os.close(reader)  # A's write into the FIFO now fails (EPIPE), as a dropped connection would
        reader = -1

        async def a_counted_every_lost_claim() -> bool:
            return await asyncio.to_thread(claims_lost, port) >= len(files)

        await a.wait_for(a_counted_every_lost_claim, 60, "A to count the claims it lost")
        assert await asyncio.to_thread(claims_lost, port) == len(files)
        assert "claim(s) lost to another instance" in a.log()

        ledger_now = [tuple(row) for row in await b.query("SELECT * FROM cloud_file_refs ORDER BY local_path")]
        assert ledger_now == ledger_by_b, "A's write-backs changed rows B had taken"
        for name, data in files.items():  # one upload each: B's copy, never replaced by A
            assert (b.mirror / name).read_bytes() == data
            now = os.stat(b.mirror / name)
            assert (now.st_ino, now.st_mtime_ns) == (copies_by_b[name].st_ino, copies_by_b[name].st_mtime_ns)
        assert sorted(p.name for p in folder.iterdir()) == sorted(Path(name).name for name in files)
    finally:
        if stopped:
            os.kill(a_pid, signal.SIGCONT)
        if reader >= 0:
            os.close(reader)
    assert a.stop() == 0 and b.stop() == 0
