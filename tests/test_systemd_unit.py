"""The shipped systemd files: the unit verifies, is hardened enough, and the example config is valid."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pydantic import BaseModel

from cloudwatcher.config.loading import load_settings
from cloudwatcher.config.settings import (
    BackupSettings,
    GoogleDriveTarget,
    LocalTarget,
    NotifySettings,
    RetrySettings,
    S3Target,
    Settings,
    SharePointTarget,
)

SYSTEMD_DIR = Path(__file__).resolve().parent.parent / "systemd"
UNIT = SYSTEMD_DIR / "cloudwatcher.service"
EXAMPLE = SYSTEMD_DIR / "cloudwatcher.toml.example"
MAX_EXPOSURE = 2.0

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed on this machine"
)


def unit_settings(text: str) -> dict[str, list[str]]:
    """Every ``Key=value`` of a unit file, in order, comments dropped (keys may repeat)."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def runnable_copy(tmp_path: Path) -> Path:
    """The shipped unit with ExecStart= pointing at an executable that exists here.

    ``verify`` rightly fails when the ExecStart binary is missing, and this machine has no
    /opt/cloudwatcher install; every other line is checked exactly as shipped.
    """
    stub = tmp_path / "cloudwatcher"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    text = re.sub(r"(?m)^ExecStart=\S+", f"ExecStart={stub}", UNIT.read_text())
    copy = tmp_path / "cloudwatcher.service"
    copy.write_text(text)
    return copy


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    return subprocess.run([SYSTEMD_ANALYZE, *args], capture_output=True, text=True, timeout=120)


@needs_systemd_analyze
def test_shipped_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    result = analyze("verify", "--man=no", str(runnable_copy(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


@needs_systemd_analyze
def test_shipped_unit_fails_verify_only_for_a_missing_program(tmp_path: Path) -> None:
    """Verified as shipped, the only complaint allowed is that /opt/cloudwatcher is not installed here."""
    exec_start = unit_settings(UNIT.read_text())["ExecStart"][0].split()[0]
    result = analyze("verify", "--man=no", str(UNIT))
    if Path(exec_start).is_file():
        assert result.returncode == 0, result.stderr
        return
    problems = [line for line in result.stderr.splitlines() if line.strip()]
    assert problems, "verify should report the missing ExecStart program"
    assert all(exec_start in line and "not executable" in line for line in problems), problems


@needs_systemd_analyze
def test_shipped_unit_exposure_is_at_most_two(tmp_path: Path) -> None:
    result = analyze("security", "--offline=true", str(UNIT))
    match = re.search(r"Overall exposure level for cloudwatcher\.service: (\d+(?:\.\d+)?)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout


def test_unit_runs_the_daemon_as_a_notify_service_with_watchdog_and_restart() -> None:
    settings = unit_settings(UNIT.read_text())
    assert settings["Type"] == ["notify"]
    assert settings["ExecStart"][0].endswith("/cloudwatcher run")
    assert settings["Restart"] == ["on-failure"]
    assert int(settings["WatchdogSec"][0]) > 0
    assert settings["StateDirectory"] == ["cloudwatcher"]
    assert settings["ConfigurationDirectory"] == ["cloudwatcher"]
    assert settings["User"] == ["cloudwatcher"]
    assert settings["KillMode"] == ["mixed"]  # SIGTERM reaches the daemon, not its PostgreSQL
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
        "UMask": "0027",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "MemoryDenyWriteExecute": "yes",
    }.items():
        assert settings[key] == [value], key
    assert "@system-service" in settings["SystemCallFilter"]


def test_unit_never_gives_up_restarting_after_a_run_of_crashes() -> None:
    settings = unit_settings(UNIT.read_text())
    assert settings["StartLimitIntervalSec"] == ["0"], "a start limit would leave the service down for good"
    assert "StartLimitBurst" not in settings
    assert settings["Restart"] == ["on-failure"] and settings["RestartSec"][0]


def test_unit_keeps_its_state_private_and_caps_memory_and_tasks() -> None:
    settings = unit_settings(UNIT.read_text())
    assert settings["StateDirectoryMode"] == ["0700"]  # database, mirror, backups: not for devices
    assert settings["MemoryMax"][0] and settings["MemoryMax"] != ["infinity"]
    assert int(settings["TasksMax"][0]) > 0
    assert "Group" in settings and "SupplementaryGroups" not in settings  # no group shared with devices


def test_the_watchdog_timeout_is_within_the_stall_bound_and_shorter_than_an_outage_ridden_out() -> None:
    """WatchdogSec= must let a database outage be ridden out for 5 minutes: the daemon keeps
    pinging through one, so the only bound the watchdog adds is on a stall or a wedged loop."""
    from cloudwatcher.daemon.health import MAX_OUTAGE_SECONDS
    from cloudwatcher.daemon.ops.stall import STALL_SECONDS

    watchdog = int(UNIT.read_text().split("WatchdogSec=")[1].split()[0])
    assert 0 < watchdog <= STALL_SECONDS < MAX_OUTAGE_SECONDS


def test_sysusers_and_tmpfiles_create_the_user_and_a_root_owned_watch_root(tmp_path: Path) -> None:
    sysusers, tmpfiles = shutil.which("systemd-sysusers"), shutil.which("systemd-tmpfiles")
    if sysusers is None or tmpfiles is None:
        pytest.skip("systemd-sysusers/systemd-tmpfiles are not installed on this machine")
    (tmp_path / "etc").mkdir()
    subprocess.run(
        [sysusers, f"--root={tmp_path}", str(SYSTEMD_DIR / "cloudwatcher.sysusers.conf")],
        check=True,
        capture_output=True,
    )
    passwd = (tmp_path / "etc" / "passwd").read_text()
    assert re.search(r"(?m)^cloudwatcher:x:\d+:\d+:.*:/var/lib/cloudwatcher:", passwd)
    subprocess.run(
        [tmpfiles, f"--root={tmp_path}", "--create", str(SYSTEMD_DIR / "cloudwatcher.tmpfiles.conf")],
        capture_output=True,  # the ACL line needs the group on the host itself; checked on install
    )
    inbox = tmp_path / "srv" / "cloudwatcher" / "inbox"
    # root's and writable by nobody else (each device folder below is an SFTP chroot); no group
    assert inbox.stat().st_mode & 0o7777 == 0o711 and (inbox.stat().st_uid, inbox.stat().st_gid) == (0, 0)
    assert (tmp_path / "etc" / "cloudwatcher" / "credentials").stat().st_mode & 0o777 == 0o700


# ------------------------------------------------------------------------------ example config
@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CLOUDWATCHER_") or name in ("STATE_DIRECTORY", "CREDENTIALS_DIRECTORY"):
            monkeypatch.delenv(name)


def all_keys() -> set[str]:
    models: list[type[BaseModel]] = [
        Settings,
        RetrySettings,
        BackupSettings,
        NotifySettings,
        LocalTarget,
        SharePointTarget,
        GoogleDriveTarget,
        S3Target,
    ]
    return {name for model in models for name in model.model_fields}


def test_example_config_documents_every_key() -> None:
    text = EXAMPLE.read_text()
    missing = sorted(key for key in all_keys() if not re.search(rf"(?m)\b{key}\s*=|^\[+{key}\]+", text))
    assert missing == []


def test_example_config_loads_as_shipped(clean_environment: None) -> None:
    settings = load_settings(EXAMPLE)
    assert str(settings.state_dir) == "/var/lib/cloudwatcher"
    assert [target.name for target in settings.target_list] == ["local"]
    assert settings.http_bind == "127.0.0.1:8765"


def test_example_config_loads_with_every_example_enabled(
    clean_environment: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    enabled = re.sub(r"(?m)^#(?=\[\[targets\]\]|[a-z_]+ = )", "", EXAMPLE.read_text())
    # The secret files it names must exist (a missing one is a configuration error): relative
    # names come from LoadCredential= (CREDENTIALS_DIRECTORY), the absolute one is moved here.
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    for name in ("http_token", "sharepoint_client_secret"):
        (credentials / name).write_text("secret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    account = credentials / "drive_service_account.json"
    account.write_text("{}")
    enabled = enabled.replace("/etc/cloudwatcher/credentials/drive_service_account.json", str(account))
    config = tmp_path / "cloudwatcher.toml"
    config.write_text(enabled)
    settings = load_settings(config)
    assert [target.provider for target in settings.target_list] == ["local", "sharepoint", "google-drive", "s3"]
    assert settings.database_url and settings.notify.webhook_url
    assert settings.target_list[0].bandwidth_limit == 20 * 1024 * 1024
