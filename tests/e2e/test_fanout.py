"""Fan-out: one daemon subprocess mirroring to all four providers at once (issue 5, item 7).

Local, SharePoint (the Graph emulator over HTTPS, trusted through ``ca_bundle``), Google Drive
(the Drive emulator with the service-account key it generated) and S3 (moto's server, found
through the standard AWS credential chain) are configured together, as an operator would.
Every file must end synced on every target with one ledger row per file per target, its
bytes readable back from each store and its verification recorded. When one target is down,
the others keep syncing, and the scheduled retry brings the down one up to date afterwards.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cloudwatcher.providers.s3 import DEFAULT_MULTIPART_THRESHOLD, DEFAULT_PART_SIZE, composite_sha256
from cloudwatcher.providers.sharepoint.quickxorhash import quickxorhash
from tests.support.daemon_process import DaemonProcess
from tests.support.emulators.drive import DriveEmulator
from tests.support.emulators.fixtures import google_drive_settings, s3_settings, sharepoint_settings
from tests.support.emulators.graph import GraphEmulator
from tests.support.emulators.s3 import object_bytes

pytestmark = pytest.mark.slow
Daemon = Callable[..., DaemonProcess]
MIB = 1024 * 1024
TARGETS = ("local", "sharepoint", "gdrive", "s3")
#: The scheme of ``remote_hash`` each provider records when the hash matched.
HASH_SCHEMES = {"local": "sha256", "sharepoint": "quickxor", "gdrive": "md5", "s3": "sha256"}


def fanout_files(rng: random.Random) -> dict[str, bytes]:
    """A few dozen files over three devices: small ones, unicode and SharePoint-forbidden names,
    the empty file, and some over every provider's chunk size (S3's 8 MiB multipart threshold,
    Drive's 8 MiB chunk and 5 MB multipart limit, SharePoint's 4 MiB simple-upload limit)."""
    files: dict[str, bytes] = {}
    folders = ["", "photos/", "Übergabe Protokoll/", "deep/er/"]
    for index in range(30):
        device = f"truck-{index % 3}"
        name = f"{device}/requests/{folders[index % 4]}émission {index} ✓.bin"
        files[name] = rng.randbytes(rng.randint(1, 64 * 1024))
    files["truck-0/requests/report: final?.txt"] = b"a name SharePoint refuses as it is"
    files["truck-1/requests/empty.txt"] = b""
    files["truck-2/requests/big/eight-and-a-bit.bin"] = rng.randbytes(8 * MIB + 1)
    files["truck-0/requests/big/seventeen ünd more.bin"] = rng.randbytes(17 * MIB + 3)
    files["truck-1/requests/big/five.bin"] = rng.randbytes(5 * MIB + 12345)
    return files


def all_targets(tmp_path: Path, graph: GraphEmulator, drive: DriveEmulator, bucket: str) -> list[dict[str, Any]]:
    return [
        {"name": "local", "provider": "local", "root": str(tmp_path / "fanout-mirror")},
        sharepoint_settings(graph),
        google_drive_settings(drive),
        s3_settings(bucket, prefix="mirror/"),
    ]


def remote_bytes(target: str, cloud_path: str, graph: GraphEmulator, drive: DriveEmulator) -> bytes | None:
    """The stored copy, read from the store itself (never through the daemon)."""
    if target == "local":
        return Path(cloud_path).read_bytes()
    if target == "sharepoint":
        return graph.file_bytes(cloud_path)
    if target == "gdrive":
        found = drive.lookup(drive.root_folder_id, cloud_path)
        assert len(found) == 1, f"{len(found)} Drive files at {cloud_path}"
        return found[0].content
    bucket, _, key = cloud_path.removeprefix("s3://").partition("/")
    return object_bytes(bucket, key)


def expected_remote_hash(target: str, data: bytes, recorded: str) -> bool:
    """Whether ``recorded`` is the provider's own hash of ``data`` in its own encoding."""
    if target == "local":
        return recorded == f"sha256:{hashlib.sha256(data).hexdigest()}"
    if target == "sharepoint":
        return recorded == f"quickxor:{quickxorhash(data)}"
    if target == "gdrive":
        return recorded == f"md5:{hashlib.md5(data).hexdigest()}"
    # S3: the full-object SHA-256 of a single upload, or the composite one of a multipart upload
    # (sha256 of the parts' digests, "-<parts>" appended by S3 and omitted by some stores).
    value, _, parts = recorded.removeprefix("sha256:").partition("-")
    if len(data) < DEFAULT_MULTIPART_THRESHOLD:
        return value == base64.b64encode(hashlib.sha256(data).digest()).decode() and not parts
    digests = [
        hashlib.sha256(data[start : start + DEFAULT_PART_SIZE]).digest()
        for start in range(0, len(data), DEFAULT_PART_SIZE)
    ]
    return value == composite_sha256(digests) and parts in ("", str(len(digests)))


async def test_every_file_is_synced_and_verified_on_all_four_targets(
    graph_emulator: GraphEmulator, drive_emulator: DriveEmulator, s3_bucket: str, daemon: Daemon, tmp_path: Path
) -> None:
    files = fanout_files(random.Random(5))
    d = daemon(targets=all_targets(tmp_path, graph_emulator, drive_emulator, s3_bucket)).start()
    await d.wait_started()
    for name, data in files.items():
        d.drop(name, data)
    await d.wait_synced(len(files) * len(TARGETS), timeout=240)

    rows = await d.query(
        "SELECT target, local_path, content_sha256, cloud_path, remote_size, remote_hash, verification"
        " FROM cloud_file_refs"
    )
    assert len(rows) == len(files) * len(TARGETS)
    assert {(row["target"], row["local_path"]) for row in rows} == {
        (target, name) for target in TARGETS for name in files
    }
    for row in rows:
        data = files[row["local_path"]]
        where = f"{row['target']}: {row['local_path']}"
        assert row["content_sha256"] == hashlib.sha256(data).hexdigest(), where
        assert row["remote_size"] == len(data), where
        assert row["verification"] == "hash", where
        assert row["remote_hash"].startswith(HASH_SCHEMES[row["target"]] + ":"), where
        assert expected_remote_hash(row["target"], data, row["remote_hash"]), where
        assert remote_bytes(row["target"], row["cloud_path"], graph_emulator, drive_emulator) == data, where

    renamed = {row["target"]: row["cloud_path"] for row in rows if row["local_path"].endswith("final?.txt")}
    assert renamed["sharepoint"].endswith("report\uff1a final\uff1f.txt")  # the documented fullwidth rule
    assert renamed["gdrive"].endswith("report: final?.txt")  # Drive and S3 keep the name
    assert renamed["s3"] == f"s3://{s3_bucket}/mirror/truck-0/requests/report: final?.txt"

    status = json.loads(d.command("status", "--json").stdout)
    per_target = {entry["name"]: entry for entry in status["targets"]}
    for target in TARGETS:
        assert per_target[target]["synced"] == len(files)
        assert per_target[target]["failed"] == per_target[target]["pending"] == 0
    assert d.stop() == 0


async def test_a_target_that_is_down_catches_up_through_the_scheduled_retry(
    graph_emulator: GraphEmulator, drive_emulator: DriveEmulator, s3_bucket: str, daemon: Daemon, tmp_path: Path
) -> None:
    rng = random.Random(11)
    files = {f"van-{n % 2}/requests/during outage {n} ß.bin": rng.randbytes(2000 + n) for n in range(10)}
    files["van-0/requests/session/large.bin"] = rng.randbytes(9 * MIB)  # an upload session once it is back
    # SharePoint answers 503 to every Graph and upload request (the token endpoint stays up).
    graph_emulator.fail_next(503, "serviceNotAvailable", count=10**9, where="any")
    d = daemon(
        targets=all_targets(tmp_path, graph_emulator, drive_emulator, s3_bucket),
        retry={"initial_delay_seconds": 0.5, "max_delay_seconds": 2, "max_attempts": 1000, "interval_seconds": 0.5},
    ).start()
    await d.wait_started()
    for name, data in files.items():
        d.drop(name, data)

    others = ("local", "gdrive", "s3")

    async def others_synced_while_sharepoint_retries() -> bool:
        rows = await d.query("SELECT target, sync_status, attempts FROM cloud_file_refs")
        synced_elsewhere = sum(1 for r in rows if r["target"] in others and r["sync_status"] == "synced")
        sharepoint = [r for r in rows if r["target"] == "sharepoint"]
        # Every SharePoint row failed at least once and some went round the schedule again.
        return (
            synced_elsewhere == len(others) * len(files)
            and len(sharepoint) == len(files)
            and all(r["attempts"] >= 1 for r in sharepoint)
            and any(r["attempts"] >= 2 for r in sharepoint)
        )

    await d.wait_for(others_synced_while_sharepoint_retries, 120, "the other targets to sync during the outage")
    down = await d.query(
        "SELECT sync_status, last_error, next_attempt_at FROM cloud_file_refs WHERE target = 'sharepoint'"
    )
    assert not any(row["sync_status"] == "synced" for row in down)
    failed = [row for row in down if row["sync_status"] == "failed"]
    assert failed and all("503" in row["last_error"] for row in failed)
    assert all(row["next_attempt_at"] is not None for row in failed)  # scheduled, not given up
    assert any(entry.status == 503 for entry in graph_emulator.requests())

    (lifted_at,) = await d.query("SELECT now() AS at")
    graph_emulator.clear_faults()
    await d.wait_synced(len(files) * len(TARGETS), timeout=120)

    rows = await d.query(
        "SELECT target, local_path, cloud_path, uploaded_at, attempts, verification FROM cloud_file_refs"
    )
    assert len(rows) == len(files) * len(TARGETS)
    for row in rows:
        assert row["verification"] == "hash"
        if row["target"] == "sharepoint":
            assert row["uploaded_at"] > lifted_at["at"]
            assert row["attempts"] >= 1
            assert graph_emulator.file_bytes(row["cloud_path"]) == files[row["local_path"]]
        else:
            assert row["uploaded_at"] < lifted_at["at"]  # the outage did not hold the others back
    assert d.stop() == 0
