"""systemd/cloudwatcher-add-device: each device account gets its own folder, the daemon's user
reaches it through ACLs (no shared group), and responses/ is read-only for the device.

Checked with real accounts of the machine (the suite runs as root): ``bin`` plays a device,
``sys`` another device, ``daemon`` the daemon's user."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import world_readable_tempdir

SCRIPT = Path(__file__).resolve().parent.parent / "systemd" / "cloudwatcher-add-device"
DEVICE, OTHER_DEVICE, DAEMON = "bin", "sys", "daemon"


@pytest.fixture
def watch_root() -> Iterator[Path]:
    base = world_readable_tempdir("cloudwatcher-devices-")
    root = base / "inbox"
    root.mkdir(mode=0o711)
    try:
        yield root
    finally:
        shutil.rmtree(base, ignore_errors=True)


def add_device(watch_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CLOUDWATCHER_WATCH_ROOT": str(watch_root)}
    env["CLOUDWATCHER_USER"] = DAEMON
    return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)


def as_user(user: str, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``sh -c script`` as ``user`` alone: its own uid and gid, no supplementary groups."""
    return subprocess.run(
        ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "sh", "-c", script, "sh", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_device_writes_requests_the_daemon_reads_them_and_answers_read_only(watch_root: Path) -> None:
    assert add_device(watch_root, "truck-7", DEVICE).returncode == 0
    folder = watch_root / "truck-7"

    wrote = as_user(DEVICE, 'umask 077; mkdir "$1/requests/2026" && echo req > "$1/requests/2026/a.json"', str(folder))
    assert wrote.returncode == 0, wrote.stderr
    read = as_user(DAEMON, 'cat "$1/requests/2026/a.json"', str(folder))
    assert read.returncode == 0 and read.stdout == "req\n", read.stderr  # despite the device's umask 077

    answered = as_user(DAEMON, 'umask 027; echo ok > "$1/responses/a.json"', str(folder))
    assert answered.returncode == 0, answered.stderr
    assert as_user(DEVICE, 'cat "$1/responses/a.json"', str(folder)).stdout == "ok\n"
    for tampering in ('echo x > "$1/responses/a.json"', 'rm -f "$1/responses/a.json"', 'echo x > "$1/responses/b"'):
        assert as_user(DEVICE, tampering, str(folder)).returncode != 0, tampering
    assert (folder / "responses" / "a.json").read_text() == "ok\n"
    assert as_user(DEVICE, 'mkdir "$1/elsewhere"', str(folder)).returncode != 0  # its folder is root's (chroot)


def test_a_device_reaches_no_other_device_and_no_shared_group_is_involved(watch_root: Path) -> None:
    assert add_device(watch_root, "truck-7", DEVICE).returncode == 0
    assert add_device(watch_root, "truck-8", OTHER_DEVICE).returncode == 0
    assert as_user(OTHER_DEVICE, 'echo hi > "$1/truck-8/requests/x"', str(watch_root)).returncode == 0

    assert as_user(DEVICE, 'ls "$1/truck-8"', str(watch_root)).returncode != 0
    assert as_user(DEVICE, 'cat "$1/truck-8/requests/x"', str(watch_root)).returncode != 0
    assert as_user(DEVICE, 'ls "$1"', str(watch_root)).returncode != 0  # the watch root is not listable
    for path in (watch_root / "truck-7", watch_root / "truck-7" / "requests", watch_root / "truck-7" / "responses"):
        assert path.stat().st_mode & 0o077 in (0o050, 0o070, 0o000), path  # group bits are the ACL mask
        assert path.stat().st_mode & 0o007 == 0, path


@pytest.mark.parametrize("device", ["../etc", "", "-rf", "a/b", "x" * 51, "truck 7"])
def test_a_name_that_is_not_a_device_id_is_refused(watch_root: Path, device: str) -> None:
    result = add_device(watch_root, device, DEVICE)
    assert result.returncode == 2
    assert list(watch_root.iterdir()) == []


def test_a_link_planted_where_a_device_folder_goes_is_refused_and_its_target_untouched(watch_root: Path) -> None:
    target = watch_root.parent / "target"
    target.mkdir(mode=0o755)
    (watch_root / "truck-7").symlink_to(target)

    result = add_device(watch_root, "truck-7", DEVICE)

    assert result.returncode == 1 and "symbolic link" in result.stderr
    assert target.stat().st_mode & 0o7777 == 0o755 and target.stat().st_uid == 0
    assert list(target.iterdir()) == []


def test_running_it_again_restores_the_modes_and_acls(watch_root: Path) -> None:
    assert add_device(watch_root, "truck-7", DEVICE).returncode == 0
    (watch_root / "truck-7" / "responses").chmod(0o777)
    assert add_device(watch_root, "truck-7", DEVICE).returncode == 0
    assert as_user(DEVICE, 'echo x > "$1/truck-7/responses/b"', str(watch_root)).returncode != 0
