"""Hostile device folders, through the daemon: links swapped in at any depth, a linked
``responses/``, FIFOs and links to /dev/zero, folders nested 1,100 deep, names that are not
UTF-8. The daemon stays the same process, a well-behaved device's files are still synced, and
no byte (or path) from outside the device's folder reaches the ledger or the mirror."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.daemon_process import DaemonProcess
from tests.support.deep_tree import make_chain, remove_chain

pytestmark = pytest.mark.slow
Daemon = Callable[..., DaemonProcess]

SECRET = b"ADMIN-SECRET: the daemon must never copy this anywhere"


def plant_secret(d: DaemonProcess) -> Path:
    """A folder outside the watch root holding a secret, shaped like a device's subfolder."""
    outside = d.workdir / "outside"
    (outside / "sub").mkdir(parents=True, exist_ok=True)
    for path in (outside / "secret.txt", outside / "sub/secret.txt", outside / "sub/secret.json"):
        path.write_bytes(SECRET)
    return outside


async def assert_secret_never_left(d: DaemonProcess, *, device_has_the_names: bool = False) -> None:
    """No ledger row holds the secret's bytes (or a path to it, unless the device's own files
    have the same names), and no mirrored file holds them."""
    secret_sha = hashlib.sha256(SECRET).hexdigest()
    assert await d.query("SELECT local_path FROM cloud_file_refs WHERE content_sha256 = $1", secret_sha) == []
    if not device_has_the_names:
        assert await d.query("SELECT local_path FROM cloud_file_refs WHERE local_path LIKE '%secret%'") == []
    if d.mirror.exists():
        for path in d.mirror.rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert SECRET not in path.read_bytes(), path


async def wait_synced_file(d: DaemonProcess, relative: str, data: bytes) -> None:
    async def there() -> bool:
        mirrored = d.mirror / relative
        return mirrored.is_file() and mirrored.read_bytes() == data

    await d.wait_for(there, 30, f"{relative} mirrored")


def skipped_per_device(d: DaemonProcess) -> dict[str, int]:
    status = json.loads(d.command("status", "--json").stdout)
    return {device["device_id"]: device["skipped"] for device in status["devices"]}


async def wait_skipped(d: DaemonProcess, device: str, at_least: int) -> None:
    async def counted() -> bool:
        rows = await d.query("SELECT skipped FROM device_skipped_files WHERE device_id = $1", device)
        return bool(rows) and rows[0]["skipped"] >= at_least

    await d.wait_for(counted, 30, f"{at_least} skipped file(s) of {device} counted")


async def test_a_middle_folder_swapped_for_a_link_uploads_nothing_from_outside(daemon: Daemon) -> None:
    d = daemon(scan_interval_seconds=1).start()
    await d.wait_started()
    pid = d.process.pid if d.process else None
    outside = plant_secret(d)
    # mkdir x; mkdir x/sub; mv x x.old; ln -s <outside> x
    (d.watch_root / "dev1/requests/x/sub").mkdir(parents=True)
    (d.watch_root / "dev1/requests/x").rename(d.watch_root / "dev1/requests/x.old")
    (d.watch_root / "dev1/requests/x").symlink_to(outside)
    d.drop("dev2/requests/well-behaved.txt", b"fine")
    await wait_synced_file(d, "dev2/requests/well-behaved.txt", b"fine")
    await wait_skipped(d, "dev1", 1)  # the link itself, reported by the watcher and the scans
    await asyncio.sleep(2.5)  # two more reconcile scans walk the tree with the link in it
    await assert_secret_never_left(d)
    assert skipped_per_device(d)["dev1"] >= 1
    assert d.process is not None and d.process.pid == pid and d.process.poll() is None
    assert d.stop() == 0


async def test_a_linked_responses_folder_gets_no_response_file(daemon: Daemon) -> None:
    d = daemon().start()
    await d.wait_started()
    outside = plant_secret(d)
    (d.watch_root / "dev1").mkdir()
    (d.watch_root / "dev1/responses").symlink_to(outside)
    d.drop("dev1/requests/broken.json", b"{not json")
    d.drop("dev2/requests/broken.json", b"{not json")

    async def answered() -> bool:
        rows = await d.query("SELECT local_path FROM responses")
        return len(rows) == 2 and (d.watch_root / "dev2/responses/broken.json").is_file()

    await d.wait_for(answered, 60, "both requests answered")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt", "sub"]  # nothing written through the link
    assert "response for dev1/responses/broken.json not written" in d.log()
    assert json.loads((d.watch_root / "dev2/responses/broken.json").read_text())["status"] == "failed"
    assert d.process is not None and d.process.poll() is None
    assert d.stop() == 0


@pytest.mark.parametrize("planted", ["fifo", "link to /dev/zero"])
async def test_a_fifo_or_device_link_at_the_response_path_never_blocks_the_daemon(daemon: Daemon, planted: str) -> None:
    d = daemon().start()
    await d.wait_started()
    (d.watch_root / "dev1/responses").mkdir(parents=True)
    target = d.watch_root / "dev1/responses/broken.json"
    if planted == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to("/dev/zero")
    d.drop("dev1/requests/broken.json", b"{not json")

    async def first_answered() -> bool:
        return len(await d.query("SELECT id FROM responses")) == 1

    await d.wait_for(first_answered, 60, "the request answered in the table")
    # The next request (another device) is answered and written: nothing is stuck.
    d.drop("dev2/requests/broken.json", b"{not json")

    async def second_written() -> bool:
        return (d.watch_root / "dev2/responses/broken.json").is_file()

    await d.wait_for(second_written, 60, "the second response written")
    assert "response for dev1/responses/broken.json not written" in d.log()
    assert d.process is not None and d.process.poll() is None
    assert d.stop(timeout=30) == 0


async def test_fifos_links_deep_folders_and_bad_names_are_skipped_counted_and_the_rest_syncs(
    daemon: Daemon,
) -> None:
    d = daemon(scan_interval_seconds=2).start()
    await d.wait_started()
    pid = d.process.pid if d.process else None
    requests = d.watch_root / "dev1/requests"
    requests.mkdir(parents=True)
    os.mkfifo(requests / "pipe.json")
    (requests / "zero.bin").symlink_to("/dev/zero")
    with open(os.path.join(os.fsencode(requests), b"bad-\xff.txt"), "wb") as handle:
        handle.write(b"bad name")
    make_chain(requests, "n", 1100, "deep.txt", b"deep")
    try:
        d.drop("dev1/requests/ordinary.txt", b"ordinary")
        d.drop("dev2/requests/other-device.txt", b"other")
        await wait_synced_file(d, "dev1/requests/ordinary.txt", b"ordinary")
        await wait_synced_file(d, "dev2/requests/other-device.txt", b"other")
        await wait_skipped(d, "dev1", 4)  # the FIFO, the link, the name, and the folder too deep to store
        skipped = skipped_per_device(d)
        assert skipped["dev1"] == 4 and skipped.get("dev2", 0) == 0
        # The files skipped for their name or type stay where the device put them.
        left = set(os.listdir(os.fsencode(requests)))
        assert {b"pipe.json", b"zero.bin", b"bad-\xff.txt"} <= left
        rows = await d.query("SELECT local_path FROM cloud_file_refs WHERE local_path LIKE 'dev1/requests/%'")
        assert {row["local_path"] for row in rows} == {"dev1/requests/ordinary.txt"}
        assert "bad-\\xff.txt" in d.log()
        assert "Traceback" not in d.log()
    finally:
        remove_chain(requests, "n")
        remove_chain(d.mirror / "dev1/requests", "n")
    assert d.process is not None and d.process.pid == pid and d.process.poll() is None
    assert d.stop() == 0


async def test_odd_mtimes_are_synced_and_those_the_ledger_cannot_hold_are_skipped(daemon: Daemon) -> None:
    d = daemon().start()
    await d.wait_started()
    year_2200, year_40000, year_1900 = 7_258_118_400, 2**40, -2_208_988_800
    for name, seconds in (("future.txt", year_2200), ("beyond.txt", year_40000), ("ancient.txt", year_1900)):
        path = d.drop(f"dev1/requests/{name}", name.encode())
        os.utime(path, ns=(seconds * 10**9, seconds * 10**9))
    await wait_synced_file(d, "dev1/requests/ancient.txt", b"ancient.txt")
    await wait_synced_file(d, "dev1/requests/future.txt", b"future.txt")
    await wait_skipped(d, "dev1", 1)
    assert (d.watch_root / "dev1/requests/beyond.txt").exists()  # left where the device put it
    sessions = await d.query("SELECT max(last_seen_at) AS at FROM device_connections WHERE device_id = 'dev1'")
    assert sessions[0]["at"].year < 2200  # clamped: a device's clock never dates a session ahead
    assert "Traceback" not in d.log()
    assert d.process is not None and d.process.poll() is None
    assert d.stop() == 0


async def test_swapping_a_middle_folder_for_a_link_in_a_loop_leaks_nothing(daemon: Daemon) -> None:
    """A device flips ``x`` between its own folder and a link to the secret's folder while the
    daemon records and uploads its files; another device keeps dropping files meanwhile.

    Size, mtime and hash checks cannot catch this one (the outside files match the device's in
    name, size and mtime): with the gateway made to follow links, the secret's hash lands in the
    ledger within a few hundred swaps.
    """
    d = daemon(scan_interval_seconds=1, settle_seconds=0).start()
    await d.wait_started()
    outside = plant_secret(d)
    requests = d.watch_root / "dev1/requests"
    (requests / "x/sub").mkdir(parents=True)
    # The device keeps adding files to x/sub while x flips; outside, files of the same names,
    # sizes and mtimes hold the secret. Only the refusal to follow the link tells them apart.
    stamp = (time.time_ns() - 3600 * 10**9,) * 2
    for number in range(3000):
        (outside / f"sub/new-{number}.txt").write_bytes(SECRET)
        os.utime(outside / f"sub/new-{number}.txt", ns=stamp)
    stop = threading.Event()
    swaps = 0

    def swap_forever() -> None:
        nonlocal swaps
        x, parked = requests / "x", requests / "x.parked"
        while not stop.is_set() and swaps < 3000:
            mine = x / f"sub/new-{swaps}.txt"
            mine.write_bytes(b"D" * len(SECRET))
            os.utime(mine, ns=stamp)
            x.rename(parked)
            x.symlink_to(outside)
            time.sleep(0.003)
            x.unlink()
            parked.rename(x)
            time.sleep(0.001)
            swaps += 1

    swapper = threading.Thread(target=swap_forever)
    swapper.start()
    try:
        for number in range(40):
            d.drop(f"dev2/requests/{number}.txt", f"file {number}".encode())
            await asyncio.sleep(0.05)
        for number in range(40):  # dev1's own rows may be failing and retrying meanwhile: look at dev2's
            await wait_synced_file(d, f"dev2/requests/{number}.txt", f"file {number}".encode())
        await asyncio.sleep(2.5)  # reconcile scans while the swapping goes on
    finally:
        stop.set()
        swapper.join()
    assert swaps > 100
    await assert_secret_never_left(d, device_has_the_names=True)
    assert d.process is not None and d.process.poll() is None
    assert d.stop() == 0
