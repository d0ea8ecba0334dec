"""Issue 8's figures: files/s with one, two and four daemons on one database and one shared root.

Also reports where the CPU went, per 1,000 files: each daemon's and the PostgreSQL server's
(its postmaster and backends, from /proc through :mod:`benchmarks.cpu`; only this run's server,
not every ``postgres`` process on a shared machine). The README's sizing paragraph ("how many
daemons can one PostgreSQL feed") is derived from these figures.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time

import asyncpg

from benchmarks.bench_foundation import build_tree
from benchmarks.common import BenchDaemon, workspace
from benchmarks.cpu import cpu_seconds, postgres_cpu_seconds


async def wal_and_connections(url: str, since: int | None = None) -> tuple[int, float, int]:
    """The server's WAL position (asyncpg reads a ``pg_lsn`` as an int), the WAL bytes written
    after ``since``, and its client connections (this one left out)."""
    connection = await asyncpg.connect(url)
    try:
        lsn = int(await connection.fetchval("SELECT pg_current_wal_lsn()"))
        clients = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
        )
        return lsn, float(lsn - since) if since is not None else 0.0, int(clients) - 1
    finally:
        await connection.close()


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
            data_dir = first.state / "postgres"  # the embedded server every daemon here shares
            wal_before, _, _ = await wal_and_connections(first.url)
            pg_before = postgres_cpu_seconds(data_dir)
            daemons_before = [cpu_seconds(pid) for pid in daemon_pids]
            started = time.monotonic()
            for device in sorted(staging.iterdir()):
                os.rename(device, first.inbox / device.name)
            finished = await first.wait_synced(files)
            wall = finished - started
            pg_cpu = postgres_cpu_seconds(data_dir) - pg_before
            each = [cpu_seconds(pid) - before for pid, before in zip(daemon_pids, daemons_before, strict=True)]
            _, wal_bytes, connections = await wal_and_connections(first.url, wal_before)
        finally:
            for d in reversed(daemons[1:]):
                d.stop_daemon_only()
            first.stop()
        daemon_cpu = sum(each)
        per_1000 = 1000 / files
        share = pg_cpu / (pg_cpu + daemon_cpu) if pg_cpu + daemon_cpu else float("nan")
        return (
            f"{instances} daemon(s): {wall:.2f} s, {files / wall:,.0f} files/s; CPU per 1,000 files: "
            f"daemons {daemon_cpu * per_1000:.2f} s (each: {', '.join(f'{c * per_1000:.2f}' for c in each)}), "
            f"PostgreSQL {pg_cpu * per_1000:.2f} s (database share {share:.0%}) over {wall:.1f} s wall "
            f"on {os.cpu_count()} cores; WAL {wal_bytes * per_1000 / 1e6:.2f} MB per 1,000 files; "
            f"{connections} client connections open"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def run() -> list[str]:
    files = int(os.environ.get("BENCH_CLUSTER_FILES", "5000"))
    lines = [f"== several daemons on one database and one shared root: {files} files of 1-2 KB, local target"]
    for instances in (1, 2, 4):
        lines.append(await one_run(instances, files))
    return lines
