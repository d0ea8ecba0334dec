"""``log_level`` and journald priorities, through ``cloudwatcher run`` as systemd starts it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.daemon_process import DaemonProcess

Daemon = Callable[..., DaemonProcess]


def run_briefly_under_journald(d: DaemonProcess) -> list[str]:
    """Start the daemon with ``$JOURNAL_STREAM`` naming its log file; stop it once it runs; its lines."""
    with d.log_path.open("ab") as log:
        info = os.fstat(log.fileno())
        env = dict(os.environ, PYTHONUNBUFFERED="1", JOURNAL_STREAM=f"{info.st_dev}:{info.st_ino}")
        process = subprocess.Popen(
            [sys.executable, "-m", "cloudwatcher", "run", "--config", str(d.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        d.drop("truck-1/requests/a.bin", b"payload")
        mirrored = d.mirror / "truck-1" / "requests" / "a.bin"
        deadline = time.monotonic() + 60
        while not mirrored.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
        assert mirrored.exists(), d.log()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, d.log()
    return d.log().splitlines()


def test_under_journald_every_daemon_line_starts_with_its_priority(daemon: Daemon) -> None:
    lines = run_briefly_under_journald(daemon(log_level="debug"))
    assert lines
    assert all(re.match(r"<[0-7]>", line) for line in lines), lines
    assert any(line.startswith("<7>DEBUG ") for line in lines)
    assert any(line.startswith("<6>INFO ") for line in lines)


def test_log_level_warning_leaves_out_info_and_debug_lines(daemon: Daemon) -> None:
    lines = run_briefly_under_journald(daemon(log_level="warning"))
    assert not [line for line in lines if line.startswith(("<6>", "<7>"))], lines


def test_a_bad_log_level_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "cloudwatcher.toml"
    config.write_text(f'state_dir = "{tmp_path}"\nlog_level = "loud"\n')
    result = subprocess.run(
        [sys.executable, "-m", "cloudwatcher", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert "log_level" in result.stderr
