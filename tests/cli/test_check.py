"""``cloudwatcher check``: one line per check, exit 0 when all pass, 1 naming what failed."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from cloudwatcher.cli import checks
from cloudwatcher.cli.checks import check_target, check_watch_root
from cloudwatcher.config import GoogleDriveTarget, Settings
from cloudwatcher.providers.google_drive.signin import (
    OAuthClient,
    SignInAttempt,
    code_from,
    consent_url,
    exchange_code,
    store_refresh_token,
)
from tests.support.daemon_process import DaemonProcess
from tests.support.emulators.drive import DriveEmulator
from tests.support.emulators.fixtures import google_drive_settings

Daemon = Callable[..., DaemonProcess]


def test_check_passes_on_a_healthy_set_up_and_leaves_no_probe_behind(daemon: Daemon) -> None:
    d = daemon()
    result = d.command("check", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "✓ configuration",
        "✓ database",
        "✓ target local (local)",
        "✓ watch root",
        "✓ state disk",
    ]
    assert "removed" in lines[2] and "free" in lines[2]
    assert "schema at migration" in lines[1]
    assert not list(d.mirror.rglob(".cloudwatcher-check*"))


def test_check_fails_naming_an_unwritable_local_target_and_still_checks_the_rest(
    daemon: Daemon, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the mirror should be")
    d = daemon(
        targets=[
            {"name": "good", "provider": "local", "root": str(tmp_path / "good")},
            {"name": "blocked", "provider": "local", "root": str(blocked)},
        ]
    )
    result = d.command("check", check=False)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith("✓ target good (local)") for line in lines)
    assert any(line.startswith("✗ target blocked (local): not writable") for line in lines)
    assert any(line.startswith("✓ state disk") for line in lines)
    assert "target blocked" in result.stderr and "target good" not in result.stderr


def test_check_fails_when_the_watch_root_is_missing(daemon: Daemon, tmp_path: Path) -> None:
    d = daemon(watch_root=str(tmp_path / "nowhere"))
    result = d.command("check", check=False)
    assert result.returncode == 1
    assert any(line.startswith("✗ watch root:") and "does not exist" in line for line in result.stdout.splitlines())


def test_check_fails_when_the_database_is_unreachable(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    d = DaemonProcess(tmp_path / "work", f"postgresql://nobody@/none?host={tmp_path}/no-socket-here")
    result = d.command("check", check=False)
    assert result.returncode == 1
    assert any(line.startswith("✗ database: not reachable") for line in result.stdout.splitlines())
    assert any(line.startswith("✓ target local") for line in result.stdout.splitlines())


def test_more_folders_than_inotify_watches_fails_the_watch_root_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "inbox"
    for device in ("a", "b", "c"):
        (root / device / "requests").mkdir(parents=True)
    limit = tmp_path / "max_user_watches"
    limit.write_text("5\n")
    monkeypatch.setattr(checks, "INOTIFY_WATCHES", limit)
    settings = Settings(state_dir=tmp_path / "state", watch_root=root, watch_mode="events")
    result = check_watch_root(settings)
    assert not result.ok and "7 folder(s)" in result.detail and "max_user_watches = 5" in result.detail
    limit.write_text("8\n")
    assert check_watch_root(settings).ok
    assert check_watch_root(Settings(state_dir=tmp_path / "state", watch_root=root, watch_mode="poll")).ok


def test_device_links_and_loops_do_not_lead_the_folder_count_astray(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "inbox"
    (root / "truck-1" / "requests").mkdir(parents=True)
    os.symlink("/", root / "truck-1" / "requests" / "everything")
    os.symlink(root, root / "truck-1" / "loop")
    os.mkfifo(root / "truck-1" / "requests" / "pipe")
    locked = root / "truck-1" / "locked"
    locked.mkdir()
    (locked / "inner").mkdir()
    locked.chmod(0)
    limit = tmp_path / "max_user_watches"
    limit.write_text("100\n")
    monkeypatch.setattr(checks, "INOTIFY_WATCHES", limit)
    try:
        result = check_watch_root(Settings(state_dir=tmp_path / "state", watch_root=root, watch_mode="events"))
    finally:
        locked.chmod(0o755)
    assert result.ok
    assert "4 folder(s)" in result.detail or "5 folder(s)" in result.detail  # root may read a 0-mode folder


async def test_a_drive_service_account_without_a_shared_drive_is_told_why_it_has_no_room(tmp_path: Path) -> None:
    with DriveEmulator(tmp_path) as emulator:
        target = GoogleDriveTarget.model_validate(google_drive_settings(emulator, name="drive"))
        emulator.storage_quota_exceeded()
        result = await check_target(target)
    assert not result.ok
    assert result.name == "target drive (google-drive)"
    assert "quota" in result.detail and "service account without a shared drive" in result.detail


@pytest.mark.parametrize("sign_in", ["impersonate", "shared drive", "user consent"])
async def test_a_full_drive_that_signs_in_a_way_with_storage_is_not_blamed_on_a_service_account(
    tmp_path: Path, sign_in: str
) -> None:
    with DriveEmulator(tmp_path) as emulator:
        settings = google_drive_settings(emulator, name="drive")
        if sign_in == "impersonate":
            settings["impersonate"] = "field-ops@example.com"
        elif sign_in == "shared drive":
            settings["shared_drive_id"] = emulator.create_shared_drive()
            settings["folder_id"] = settings["shared_drive_id"]
        else:  # a user who consented: what `cloudwatcher authorize` stores
            del settings["service_account_file"]
            settings.update(oauth_client_file=str(emulator.oauth_client_file), token_file=str(tmp_path / "t.json"))
            client = OAuthClient.from_file(emulator.oauth_client_file)
            attempt = SignInAttempt.new()
            address = emulator.consent(consent_url(client, attempt))
            code = code_from(address, attempt.state)
            store_refresh_token(tmp_path / "t.json", exchange_code(client, code, attempt, None))
        target = GoogleDriveTarget.model_validate(settings)
        emulator.storage_quota_exceeded()
        result = await check_target(target)
    assert not result.ok and "quota" in result.detail
    assert "service account" not in result.detail


async def test_a_cloud_target_that_refuses_the_probe_fails_naming_it(tmp_path: Path) -> None:
    with DriveEmulator(tmp_path) as emulator:
        target = GoogleDriveTarget.model_validate(google_drive_settings(emulator, name="drive"))
        emulator.fail_next(403, "insufficientFilePermissions", "The user does not have sufficient permissions.")
        refused = await check_target(target)
        passed = await check_target(target)
    assert not refused.ok and "not writable" in refused.detail and "permissions" in refused.detail
    assert "service account" not in refused.detail
    assert passed.ok and "removed" in passed.detail
