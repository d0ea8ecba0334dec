"""Configuration: defaults, precedence (flags > env > TOML > defaults) and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudwatcher.config import ConfigError, LocalTarget, load_settings
from cloudwatcher.config.settings import parse_byte_rate


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("CLOUDWATCHER_") or key in ("STATE_DIRECTORY", "CREDENTIALS_DIRECTORY"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_defaults_follow_the_contract(tmp_path: Path) -> None:
    settings = load_settings()
    state = tmp_path / "home/.local/state/cloudwatcher"
    assert settings.state_dir == state
    assert settings.watch_root == state / "inbox"
    assert settings.database_url is None and settings.uses_embedded_database()
    assert settings.target_list == [LocalTarget(name="local", provider="local", root=state / "mirror")]
    assert (settings.settle_seconds, settings.scan_interval_seconds, settings.device_idle_seconds) == (
        1.0,
        300,
        900,
    )
    assert settings.max_request_bytes == 10485760
    assert (settings.retry.initial_delay_seconds, settings.retry.max_delay_seconds) == (5, 3600)
    assert (settings.retry.max_attempts, settings.retry.interval_seconds) == (10, 10)
    assert settings.upload_concurrency == 4
    assert settings.http_bind == "127.0.0.1:8765"
    assert settings.log_format == "text"
    assert settings.log_level == "info"
    assert settings.backup_dir == state / "backups"
    assert (settings.backup.interval_hours, settings.backup.keep) == (24, 7)
    assert settings.watch_mode == "auto" and settings.poll_interval_seconds == 2
    assert settings.after_sync == "keep" and settings.after_sync_min_age_seconds == 86400
    assert settings.device_binding == "listed"


def test_state_directory_from_systemd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", f"{tmp_path}/svc:{tmp_path}/other")
    assert load_settings().state_dir == tmp_path / "svc"


def test_environment_beats_toml_and_flags_beat_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("settle_seconds = 3.0\nupload_concurrency = 2\n[retry]\nmax_attempts = 4\n")
    monkeypatch.setenv("CLOUDWATCHER_SETTLE_SECONDS", "5")
    monkeypatch.setenv("CLOUDWATCHER_RETRY__MAX_ATTEMPTS", "6")
    settings = load_settings(config)
    assert settings.settle_seconds == 5.0
    assert settings.upload_concurrency == 2
    assert settings.retry.max_attempts == 6
    assert load_settings(config, settle_seconds=7.0).settle_seconds == 7.0


def test_targets_from_json_in_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(
        "CLOUDWATCHER_TARGETS",
        f'[{{"name": "m", "provider": "local", "root": "{tmp_path}/m", "bandwidth_limit": "2M",'
        ' "include": ["**/*.jpg"]}]',
    )
    (target,) = load_settings().target_list
    assert isinstance(target, LocalTarget)
    assert target.bandwidth_limit == 2 * 1024 * 1024
    assert target.include == ["**/*.jpg"]


def test_config_file_from_environment_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('log_format = "json"\n')
    monkeypatch.setenv("CLOUDWATCHER_CONFIG", str(config))
    assert load_settings().log_format == "json"


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('settle_seconds = "soon"', "settle_seconds"),
        ("upload_concurrency = 0", "upload_concurrency"),
        ('log_format = "xml"', "log_format"),
        ('log_level = "verbose"', "log_level"),
        ("no_such_key = 1", "no_such_key"),
        ("[retry]\nmax_attempts = 0", "retry.max_attempts"),
        ('[[targets]]\nname = "x"\nprovider = "local"', "targets[0].root"),
        ('[[targets]]\nname = "x"\nprovider = "ftp"\nroot = "/x"', "targets[0]"),
        (
            '[[targets]]\nname = "a"\nprovider = "local"\nroot = "/a"\n[[targets]]\nname = "a"\nprovider = "local"\n'
            'root = "/b"',
            "target names must be unique",
        ),
        ('http_bind = "everywhere"', "http_bind"),
        ('device_binding = "loose"', "device_binding"),
        (
            '[[targets]]\nname = "s"\nprovider = "sharepoint"\ntenant_id = "t"\nclient_id = "c"\nclient_secret = "x"',
            "drive_id or site_id",
        ),
    ],
)
def test_bad_values_raise_one_line_naming_the_key(tmp_path: Path, toml: str, key: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(toml + "\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert key in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_or_broken_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("settle_seconds = = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(broken)


def test_secret_files_resolve_against_the_credentials_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "token").write_text("s3cret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    monkeypatch.setenv("CLOUDWATCHER_HTTP_TOKEN_FILE", "token")
    assert load_settings().api_token() == "s3cret"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("500K", 512000), ("10M", 10485760), ("1G", 1073741824), (2048, 2048), ("1.5M", 1572864), (None, None)],
)
def test_byte_rates_use_powers_of_1024(text: object, expected: int | None) -> None:
    assert parse_byte_rate(text) == expected
