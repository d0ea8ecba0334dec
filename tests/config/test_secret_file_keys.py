"""A ``*_file`` key naming a file that cannot be read is a configuration error: exit 2, one line naming the key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

MISSING_FILE_CONFIGS = {
    "http_token_file": 'http_token_file = "{missing}"\n',
    "client_secret_file": (
        '[[targets]]\nname = "sp"\nprovider = "sharepoint"\ntenant_id = "t"\nclient_id = "c"\n'
        'drive_id = "d"\nclient_secret_file = "{missing}"\n'
    ),
    "client_certificate_file": (
        '[[targets]]\nname = "sp"\nprovider = "sharepoint"\ntenant_id = "t"\nclient_id = "c"\n'
        'drive_id = "d"\nclient_certificate_file = "{missing}"\n'
    ),
    "oauth_client_file": (
        '[[targets]]\nname = "gd"\nprovider = "google-drive"\nfolder_id = "f"\noauth_client_file = "{missing}"\n'
        'token_file = "{missing}.token"\n'
    ),
    "service_account_file": (
        '[[targets]]\nname = "gd"\nprovider = "google-drive"\nfolder_id = "f"\nservice_account_file = "{missing}"\n'
    ),
}


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDWATCHER_")}
    environment.pop("CREDENTIALS_DIRECTORY", None)
    environment["HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "cloudwatcher", *args], capture_output=True, text=True, env=environment, timeout=120
    )


@pytest.mark.parametrize("key", sorted(MISSING_FILE_CONFIGS))
@pytest.mark.parametrize("command", [["run"], ["status", "--json"]])
def test_a_missing_secret_file_exits_2_with_one_line_naming_the_key(
    tmp_path: Path, key: str, command: list[str]
) -> None:
    config = tmp_path / "cloudwatcher.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state"}"\n' + MISSING_FILE_CONFIGS[key].format(missing=tmp_path / "absent")
    )
    result = run_cli(*command, "--config", str(config), home=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0] and "file not found" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_a_secret_file_that_is_a_folder_is_a_configuration_error(tmp_path: Path) -> None:
    config = tmp_path / "cloudwatcher.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\nhttp_token_file = "{tmp_path}"\n')
    result = run_cli("status", "--config", str(config), home=tmp_path)
    assert result.returncode == 2
    assert "http_token_file" in result.stderr and "not a file" in result.stderr


def test_an_unreadable_secret_file_is_a_configuration_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root reads any file; prove the same path with a name that cannot be opened instead.
        token = tmp_path / ("x" * 300)
    else:
        token = tmp_path / "token"
        token.write_text("secret\n")
        token.chmod(0)
    config = tmp_path / "cloudwatcher.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\nhttp_token_file = "{token}"\n')
    result = run_cli("status", "--config", str(config), home=tmp_path)
    assert result.returncode == 2
    assert "http_token_file" in result.stderr and "cannot read" in result.stderr


def test_a_readable_secret_file_in_the_credentials_directory_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cloudwatcher.config import load_settings

    for key in list(os.environ):
        if key.startswith("CLOUDWATCHER_"):
            monkeypatch.delenv(key)
    (tmp_path / "token").write_text("s3cret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    monkeypatch.setenv("CLOUDWATCHER_HTTP_TOKEN_FILE", "token")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_settings().api_token() == "s3cret"
