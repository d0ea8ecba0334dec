"""Issue 3's figures: a 10,000-file burst end to end against rclone and cp, and steady-rate latency."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import time
from pathlib import Path

from benchmarks.common import BenchDaemon, ensure_rclone, median, percentile, timed, workspace

DEVICES = 100


def build_tree(root: Path, files: int, rng: random.Random) -> None:
    """``files`` small (1-2 KB) files spread over DEVICES device folders, mtimes in the past.

    Attachments (not ``.json``), so the figure is the sync pipeline's; request ingestion has its
    own benchmark (bench_domain).
    """
    past = time.time() - 60
    for index in range(files):
        path = root / f"device-{index % DEVICES:03d}" / "requests" / f"batch-{index // 1000}" / f"r{index}.dat"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.randint(1024, 2048)))
        os.utime(path, (past, past))


async def burst(files: int, runs: int) -> list[str]:
    """``runs`` rounds of the same burst, each timed against rclone and cp in the same round.

    The machines are shared and noisy (one round can be several-fold off), so every round pairs
    cloudwatcher with its anchors moments apart and the summary is the median of the rounds'
    ratios. Each round gets trees of its own; all are deleted at the end, outside every timed
    section (a large delete slows file creation on these disks for minutes).
    """
    root = workspace("cw-bench-burst-")
    lines = [f"== burst: {files} files of 1-2 KB in {DEVICES} device folders, local target, embedded PostgreSQL"]
    rclone = ensure_rclone()
    if not rclone:
        lines.append("rclone: not available here (Debian package could not be installed); comparison skipped")
    ratios: dict[str, list[float]] = {}
    try:
        for run in range(1, runs + 1):
            lines.append(f"-- round {run} of {runs}")
            round_lines, round_ratios = await _burst_round(root / f"round-{run}", files, rclone)
            lines += round_lines
            for name, ratio in round_ratios.items():
                ratios.setdefault(name, []).append(ratio)
        for name, values in ratios.items():
            shown = ", ".join(f"{value:.2f}x" for value in values)
            lines.append(f"cloudwatcher / {name}: median {median(values):.2f}x over {len(values)} round(s) ({shown})")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return lines


async def _burst_round(root: Path, files: int, rclone: str | None) -> tuple[list[str], dict[str, float]]:
    staging = root / "staging"
    os.mkdir(root)
    os.chmod(root, 0o755)  # the embedded server's user reaches its state dir when run as root
    build_tree(staging, files, random.Random(1))
    anchors: dict[str, float] = {}
    # Each timed run starts with nothing dirty in the page cache: the local target's group
    # commit (syncfs) would otherwise write back the tree the previous step just made.
    if rclone:
        os.sync()
        anchors["rclone copy"] = timed([rclone, "copy", str(staging), str(root / "rclone-dest")])
    os.sync()
    anchors["cp -r"] = timed(["cp", "-r", str(staging), str(root / "cp-dest")])
    daemon = BenchDaemon(root)
    daemon.start()
    try:
        daemon.inbox.mkdir(parents=True, exist_ok=True)
        os.sync()
        daemon.started_wall = time.time()
        for device in sorted(staging.iterdir()):
            os.rename(device, daemon.inbox / device.name)  # devices rename finished folders into place
        # The end is the ledger's own time of the last sync, not when a poll noticed it: polling
        # every few ms would spend the database's CPU the daemon is competing for, so poll
        # slowly and read the time back (uploaded_at: when the last batch was marked synced).
        await daemon.wait_synced(files, poll_seconds=0.25)
        phases = await daemon.phases()
        wall = phases["last_synced"] - daemon.started_wall
        rss = daemon.peak_rss_mb()
    finally:
        daemon.stop()
    lines = [
        f"cloudwatcher: {wall:.2f} s end to end, {files / wall:,.0f} files/s, peak RSS {rss:.0f} MB",
        f"  ledger: first row after {phases['first_recorded'] - phases['start']:.2f} s... "
        f"recording took {phases['last_recorded'] - phases['first_recorded']:.2f} s, "
        f"uploads {phases['first_synced'] - phases['first_recorded']:.2f} s after the first row "
        f"and {phases['last_synced'] - phases['last_recorded']:.2f} s after the last",
    ]
    for name, seconds in anchors.items():
        lines.append(f"{name}: {seconds:.2f} s  -> cloudwatcher / {name} = {wall / seconds:.2f}x")
    return lines, {name: wall / seconds for name, seconds in anchors.items()}


async def steady(rate: int, seconds: int) -> list[str]:
    root = workspace("cw-bench-steady-")
    lines = [f"== steady: {rate} files/s for {seconds} s (fresh files: the 1.0 s settle rule applies)"]
    try:
        daemon = BenchDaemon(root)
        daemon.start()
        dropped: dict[str, float] = {}
        try:
            rng = random.Random(2)
            interval = 1.0 / rate
            next_at = time.time()
            for index in range(rate * seconds):
                local = f"device-{index % 10:02d}/requests/r{index}.dat"
                path = daemon.inbox / local
                path.parent.mkdir(parents=True, exist_ok=True)
                temp = path.with_name(f".{path.name}.part")
                temp.write_bytes(rng.randbytes(1500))
                os.rename(temp, path)
                dropped[local] = time.time()
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.time()))
            await daemon.wait_synced(len(dropped))
            synced = await daemon.synced_times()
            rss = daemon.peak_rss_mb()
        finally:
            daemon.stop()
        latencies = [(synced[path] - at) * 1000 for path, at in dropped.items()]
        lines.append(
            f"drop-to-synced p50 {median(latencies):.0f} ms, p99 {percentile(latencies, 0.99):.0f} ms "
            f"(goal p99 < 1150 ms = settle 1000 ms + 150 ms); peak RSS {rss:.0f} MB"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return lines


async def run() -> list[str]:
    files = int(os.environ.get("BENCH_FILES", "10000"))
    runs = int(os.environ.get("BENCH_BURST_ROUNDS", "3"))
    return [*await burst(files, runs), *await steady(100, int(os.environ.get("BENCH_STEADY_SECONDS", "10")))]
