"""Issue 8's figures: files/s with one, two and four daemons on one database and one shared root.

Also reports where the CPU went (the daemons versus PostgreSQL), from /proc, so the answer to
"does adding instances help on this machine, and what is the bottleneck" comes from the run.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path

from benchmarks.bench_foundation import build_tree
from benchmarks.common import BenchDaemon, workspace

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / _TICKS


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


async def one_run(instances: int, files: int) -> str:
    root = workspace(f"cw-bench-cluster{instances}-")
    try:
        staging = root / "staging"
        build_tree(staging, files, random.Random(3))
        first = BenchDaemon(root / "d0")
        first.root.mkdir()
        daemons = [first]
        first.start()
        shared = {
            "DATABASE_URL": first.url,
            "WATCH_ROOT": str(first.inbox),
            "TARGETS": json.dumps([{"name": "local", "provider": "local", "root": str(first.mirror)}]),
        }
        for index in range(1, instances):
            other = BenchDaemon(root / f"d{index}", **{key.lower(): value for key, value in shared.items()})
            other.root.mkdir()
            other.start()
            daemons.append(other)
        try:
            first.inbox.mkdir(parents=True, exist_ok=True)
            daemon_pids = [d.process.pid for d in daemons if d.process is not None]
            pg_before, daemons_before = cpu_seconds(postgres_pids()), cpu_seconds(daemon_pids)
            started = time.monotonic()
            for device in sorted(staging.iterdir()):
                os.rename(device, first.inbox / device.name)
            finished = await first.wait_synced(files)
            wall = finished - started
            pg_cpu = cpu_seconds(postgres_pids()) - pg_before
            daemon_cpu = cpu_seconds(daemon_pids) - daemons_before
        finally:
            for d in reversed(daemons[1:]):
                d.stop_daemon_only()
            first.stop()
        share = pg_cpu / (pg_cpu + daemon_cpu) if pg_cpu + daemon_cpu else float("nan")
        return (
            f"{instances} daemon(s): {wall:.2f} s, {files / wall:,.0f} files/s; CPU: daemons {daemon_cpu:.1f} s, "
            f"PostgreSQL {pg_cpu:.1f} s (database share {share:.0%}) over {wall:.1f} s wall on {os.cpu_count()} cores"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def run() -> list[str]:
    files = int(os.environ.get("BENCH_CLUSTER_FILES", "5000"))
    lines = [f"== several daemons on one database and one shared root: {files} files of 1-2 KB, local target"]
    for instances in (1, 2, 4):
        lines.append(await one_run(instances, files))
    return lines
