"""The embedded default: a private PostgreSQL in <state_dir>/postgres, shared by daemon and CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudwatcher.database import EmbeddedPostgres, EmbeddedPostgresError
from cloudwatcher.database import embedded as embedded_module
from tests.conftest import world_readable_tempdir


@pytest.fixture
def state_dir() -> Iterator[Path]:
    base = world_readable_tempdir("cloudwatcher-embedded-")
    try:
        yield base / "state"
    finally:
        if (base / "state" / "postgres").exists():
            EmbeddedPostgres(base / "state" / "postgres").stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


def cli(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDWATCHER_")}
    env.update(CLOUDWATCHER_STATE_DIR=str(state_dir), CLOUDWATCHER_HTTP_BIND="", CLOUDWATCHER_SETTLE_SECONDS="0.2")
    return subprocess.run(
        [sys.executable, "-m", "cloudwatcher", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_db_url_starts_the_embedded_server_on_a_unix_socket(state_dir: Path) -> None:
    result = cli(state_dir, "db-url")
    # Read-only: the fresh database is not migrated, which it says (exit 1), URL printed all the same.
    assert result.returncode == 1 and "not migrated" in result.stderr
    url = result.stdout.strip()
    assert url.startswith("postgresql://cloudwatcher@/cloudwatcher?host=/")  # not the superuser
    assert (state_dir / "postgres" / "PG_VERSION").is_file()
    migrate = cli(state_dir, "migrate")
    assert migrate.returncode == 0 and "schema up to date" in migrate.stdout
    again = cli(state_dir, "db-url")
    assert again.returncode == 0 and again.stdout.strip() == url  # running already: same server, same URL
    assert EmbeddedPostgres(state_dir / "postgres").is_running()  # db-url leaves it up for the URL's user


def test_a_command_that_started_the_embedded_server_stops_it_again(state_dir: Path) -> None:
    server = EmbeddedPostgres(state_dir / "postgres")
    migrate = cli(state_dir, "migrate")
    assert migrate.returncode == 0, migrate.stderr
    assert not server.is_running()
    status = cli(state_dir, "status", "--json")
    assert status.returncode == 0, status.stderr
    assert not server.is_running()


def test_the_embedded_server_stays_up_while_another_process_uses_it(state_dir: Path) -> None:
    starter = EmbeddedPostgres(state_dir / "postgres")
    starter.ensure_running()
    assert starter.started_here
    daemon_like = EmbeddedPostgres(state_dir / "postgres")
    daemon_like.ensure_running()  # holds its shared use, as `cloudwatcher run` does
    assert not starter.stop_if_unused()
    assert starter.is_running()
    status = cli(state_dir, "status", "--json")  # found it running: leaves it alone
    assert status.returncode == 1 and "not migrated" in status.stderr
    assert starter.is_running()
    daemon_like.release()
    assert starter.stop_if_unused()
    assert not starter.is_running()


def test_the_daemon_and_the_cli_share_the_embedded_server(state_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDWATCHER_")}
    env.update(CLOUDWATCHER_STATE_DIR=str(state_dir), CLOUDWATCHER_HTTP_BIND="", CLOUDWATCHER_SETTLE_SECONDS="0.2")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "cloudwatcher", "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        drop = state_dir / "inbox" / "truck-1" / "requests" / "hello.txt"
        deadline = time.monotonic() + 60
        while not (state_dir / "inbox").is_dir() and time.monotonic() < deadline:
            time.sleep(0.1)
        drop.parent.mkdir(parents=True, exist_ok=True)
        drop.write_text("hello")
        mirrored = state_dir / "mirror" / "truck-1" / "requests" / "hello.txt"
        while not mirrored.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert mirrored.read_text() == "hello"
        status = cli(state_dir, "files", "--json")
        assert status.returncode == 0 and '"sync_status": "synced"' in status.stdout
    finally:
        daemon.terminate()
        assert daemon.wait(timeout=30) == 0


def test_no_server_binaries_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(embedded_module.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(embedded_module.shutil, "which", lambda name: None)
    monkeypatch.setattr(embedded_module.Path, "glob", lambda self, pattern: iter(()))
    with pytest.raises(EmbeddedPostgresError, match="database_url"):
        EmbeddedPostgres(tmp_path / "postgres")
