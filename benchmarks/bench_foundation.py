"""A 10,000-file burst end to end against rclone and cp, and steady-rate latency.

The headline is what devices do: files written one at a time into device folders that already
exist (renamed from a dot-temp name, or written in place and left to settle); the whole-folder
move (one event per folder, walked in a thread) is reported second.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import BenchDaemon, ensure_rclone, median, percentile, timed_then_sync, workspace
from benchmarks.cpu import cpu_seconds, postgres_cpu_seconds

DEVICES = 100  # the other benchmarks' trees (bench_cluster); the burst's count is BENCH_DEVICES


def build_tree(
    root: Path, files: int, rng: random.Random, devices: int = DEVICES, *, batch_folders: bool = True
) -> None:
    """``files`` small (1-2 KB) files spread over ``devices`` device folders, mtimes in the past.

    Attachments (not ``.json``), so the figure is the sync pipeline's; request ingestion has its
    own benchmark (bench_domain). ``batch_folders`` nests every thousand files in a folder of
    their own; without it each device's files lie directly in its ``requests/``.
    """
    past = time.time() - 60
    for index in range(files):
        requests = root / f"device-{index % devices:03d}" / "requests"
        path = (requests / f"batch-{index // 1000}" if batch_folders else requests) / f"r{index}.dat"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.randint(1024, 2048)))
        os.utime(path, (past, past))


@dataclass
class Scenario:
    """One way files reach the watch root, measured against the same anchors in every round."""

    name: str
    drop: Callable[[Path, Path], None]  # (staging tree, inbox) -> the files are in place
    prepare: Callable[[Path, Path], None] = lambda staging, inbox: None  # before the clock starts
    settings: dict[str, str] = field(default_factory=dict)


def _existing_device_folders(staging: Path, inbox: Path) -> None:
    """Devices write into folders that already exist (and the daemon already watches)."""
    for device in sorted(staging.iterdir()):
        (inbox / device.name / "requests").mkdir(parents=True, exist_ok=True)


def _staged_files(staging: Path) -> list[tuple[Path, bytes]]:
    """Every staged file as (path relative to the staging root, bytes), read before the clock starts."""
    found = sorted(path for path in staging.rglob("*") if path.is_file())
    return [(path.relative_to(staging), path.read_bytes()) for path in found]


def _write_one_by_one(staging: Path, inbox: Path, *, rename: bool) -> None:
    """A writer as fast as it can: each file written (to a dot-temp name, then renamed into place,
    when ``rename``), one after the other, into its device's existing folder."""
    for relative, content in _staged_files(staging):
        final = inbox / relative
        final.parent.mkdir(parents=True, exist_ok=True)
        if rename:
            temp = final.with_name(f".{final.name}.part")
            temp.write_bytes(content)
            os.rename(temp, final)
        else:
            final.write_bytes(content)


def _move_folders(staging: Path, inbox: Path) -> None:
    for device in sorted(staging.iterdir()):
        os.rename(device, inbox / device.name)  # whole finished folders renamed into place


def scenarios(settle_seconds: str) -> list[Scenario]:
    """The headline first: what devices do (one file at a time), then the folder move."""
    return [
        Scenario(
            "one-by-one, dot-temp then rename (settle 1.0 s, the default)",
            lambda staging, inbox: _write_one_by_one(staging, inbox, rename=True),
            _existing_device_folders,
        ),
        Scenario(
            f"one-by-one, written in place (settle {settle_seconds} s, shortened for this run)",
            lambda staging, inbox: _write_one_by_one(staging, inbox, rename=False),
            _existing_device_folders,
            {"settle_seconds": settle_seconds},
        ),
        Scenario("folder move (whole device folders renamed in, old mtimes)", _move_folders),
    ]


async def burst(files: int, runs: int, devices: int, settle_seconds: str) -> list[str]:
    """``runs`` rounds, each timing every scenario against rclone and cp of the same tree.

    The machines are shared and noisy (one round can be several-fold off), so every round pairs
    cloudwatcher with its anchors moments apart and the summary is the median of the rounds'
    ratios. Each round gets trees of its own; all are deleted at the end, outside every timed
    section (a large delete slows file creation on these disks for minutes).
    """
    root = workspace("cw-bench-burst-")
    lines = [
        f"== burst: {files} files of 1-2 KB into {devices} device folders, local target, embedded PostgreSQL;"
        " anchors are `rclone copy && sync` and `cp -r && sync` of the same tree in the same round"
    ]
    rclone = ensure_rclone()
    if not rclone:
        lines.append("rclone: not available here (Debian package could not be installed); comparison skipped")
    measured = scenarios(settle_seconds)
    ratios: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    try:
        for run in range(1, runs + 1):
            lines.append(f"-- round {run} of {runs}")
            round_root = root / f"round-{run}"
            os.mkdir(round_root)
            os.chmod(round_root, 0o755)  # the embedded server's user reaches its state dir when run as root
            anchors = _anchors(round_root, files, devices, rclone)
            lines += [f"{name}: {seconds:.2f} s" for name, seconds in anchors.items()]
            for index, scenario in enumerate(measured):
                staging = round_root / f"staging-{index}"
                build_tree(staging, files, random.Random(1), devices, batch_folders=False)
                result = await _burst_round(round_root / f"daemon-{index}", staging, files, scenario)
                lines.append(f"[{scenario.name}]")
                lines += result.lines
                for name, seconds in anchors.items():
                    ratio = result.wall / seconds
                    lines.append(f"  cloudwatcher / {name} = {ratio:.2f}x")
                    ratios.setdefault((scenario.name, name), []).append(ratio)
                cpu.setdefault((scenario.name, "daemon"), []).append(result.daemon_cpu_per_1000)
                cpu.setdefault((scenario.name, "PostgreSQL"), []).append(result.postgres_cpu_per_1000)
        lines.append("-- summary (median over rounds; every round in brackets)")
        for scenario in measured:
            lines.append(f"[{scenario.name}]")
            for (name, anchor), values in ratios.items():
                if name == scenario.name:
                    lines.append(f"  cloudwatcher / {anchor}: median {median(values):.2f}x ({_shown(values, 'x')})")
            for who in ("daemon", "PostgreSQL"):
                values = cpu[(scenario.name, who)]
                lines.append(f"  {who} CPU per 1,000 files: median {median(values):.2f} s ({_shown(values, ' s')})")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return lines


def _shown(values: list[float], unit: str) -> str:
    return ", ".join(f"{value:.2f}{unit}" for value in values)


def _anchors(root: Path, files: int, devices: int, rclone: str | None) -> dict[str, float]:
    """`rclone copy && sync` and `cp -r && sync` of the tree every scenario of this round drops.

    Each starts with nothing dirty in the page cache (the daemon's local target flushes with
    syncfs, so the anchors' copies are made durable too, and the tree just built is not
    written back inside a timed section).
    """
    staging = root / "anchor-staging"
    build_tree(staging, files, random.Random(1), devices, batch_folders=False)
    anchors: dict[str, float] = {}
    if rclone:
        os.sync()
        anchors["rclone copy && sync"] = timed_then_sync([rclone, "copy", str(staging), str(root / "rclone-dest")])
    os.sync()
    anchors["cp -r && sync"] = timed_then_sync(["cp", "-r", str(staging), str(root / "cp-dest")])
    return anchors


@dataclass
class RoundResult:
    wall: float
    daemon_cpu_per_1000: float
    postgres_cpu_per_1000: float
    lines: list[str]


async def _burst_round(root: Path, staging: Path, files: int, scenario: Scenario) -> RoundResult:
    os.mkdir(root)
    os.chmod(root, 0o755)
    daemon = BenchDaemon(root, **scenario.settings)
    daemon.start()
    try:
        daemon.inbox.mkdir(parents=True, exist_ok=True)
        scenario.prepare(staging, daemon.inbox)
        await asyncio.sleep(0.5)  # let the watcher take up the folders made just now
        assert daemon.process is not None
        data_dir = daemon.state / "postgres"
        os.sync()
        daemon_cpu = cpu_seconds(daemon.process.pid)
        postgres_cpu = postgres_cpu_seconds(data_dir)
        daemon.started_wall = time.time()
        # The writer runs in a thread of this process, not the daemon's, as a device would.
        await asyncio.to_thread(scenario.drop, staging, daemon.inbox)
        dropped = time.time() - daemon.started_wall  # the writer's own pace: the floor for the daemon
        # The end is the ledger's own time of the last sync, not when a poll noticed it: polling
        # every few ms would spend the database's CPU the daemon is competing for, so poll
        # slowly and read the time back (uploaded_at: when the last batch was marked synced).
        await daemon.wait_synced(files, poll_seconds=0.25)
        daemon_cpu = cpu_seconds(daemon.process.pid) - daemon_cpu
        postgres_cpu = postgres_cpu_seconds(data_dir) - postgres_cpu
        phases = await daemon.phases()
        wall = phases["last_synced"] - daemon.started_wall
        rss = daemon.peak_rss_mb()
    finally:
        daemon.stop()
    per_1000 = 1000 / files
    lines = [
        f"  cloudwatcher: {wall:.2f} s end to end, {files / wall:,.0f} files/s, peak RSS {rss:.0f} MB; "
        f"CPU per 1,000 files: daemon {daemon_cpu * per_1000:.2f} s, PostgreSQL {postgres_cpu * per_1000:.2f} s",
        f"  writer done after {dropped:.2f} s; "
        f"ledger: first row after {phases['first_recorded'] - phases['start']:.2f} s, "
        f"recording took {phases['last_recorded'] - phases['first_recorded']:.2f} s, "
        f"uploads {phases['first_synced'] - phases['first_recorded']:.2f} s after the first row "
        f"and {phases['last_synced'] - phases['last_recorded']:.2f} s after the last",
    ]
    return RoundResult(wall, daemon_cpu * per_1000, postgres_cpu * per_1000, lines)


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
    devices = int(os.environ.get("BENCH_DEVICES", "20"))
    settle_seconds = os.environ.get("BENCH_SETTLE_SECONDS", "0.25")
    steady_seconds = int(os.environ.get("BENCH_STEADY_SECONDS", "10"))
    return [*await burst(files, runs, devices, settle_seconds), *await steady(100, steady_seconds)]
