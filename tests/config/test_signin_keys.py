"""Exactly one way to sign in per cloud target: anything else is a configuration error (exit 2) naming the keys."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cloudwatcher.config import GoogleDriveTarget, SharePointTarget, load_settings

DRIVE = '[[targets]]\nname = "gd"\nprovider = "google-drive"\nfolder_id = "f"\n'
SHAREPOINT = '[[targets]]\nname = "sp"\nprovider = "sharepoint"\ntenant_id = "t"\nclient_id = "c"\ndrive_id = "d"\n'


def run_check(config: Path, home: Path) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDWATCHER_")}
    environment.pop("CREDENTIALS_DIRECTORY", None)
    environment["HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "cloudwatcher", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    made = {name: tmp_path / name for name in ("key.json", "client.json", "cert.pem", "secret.txt")}
    for path in made.values():
        path.write_text("{}")
    return made


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        ("", "one way to sign in is required"),
        ('service_account_file = "{key.json}"\noauth_client_file = "{client.json}"\n', "service_account_file"),
        ('service_account_file = "{key.json}"\ntoken_file = "{tmp}/t.json"\n', "service_account_file"),
        ('oauth_client_file = "{client.json}"\n', "token_file is required"),
        ('token_file = "{tmp}/t.json"\n', "oauth_client_file is required"),
        ('oauth_client_file = "{client.json}"\ntoken_file = "{tmp}/t.json"\nimpersonate = "a@b.c"\n', "impersonate"),
    ],
)
def test_a_drive_target_without_exactly_one_way_to_sign_in_exits_2_naming_the_keys(
    tmp_path: Path, files: dict[str, Path], keys: str, named: str
) -> None:
    config = tmp_path / "cloudwatcher.toml"
    values = {name.replace(".", "_"): str(path) for name, path in files.items()}
    body = keys.replace("{key.json}", values["key_json"]).replace("{client.json}", values["client_json"])
    config.write_text(f'state_dir = "{tmp_path / "state"}"\n' + DRIVE + body.replace("{tmp}", str(tmp_path)))
    result = run_check(config, tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("keys", "given"),
    [
        ("", ""),
        ('client_secret = "s"\nclient_certificate_file = "{cert.pem}"\n', "client_secret, client_certificate_file"),
        (
            'client_secret_file = "{secret.txt}"\nclient_certificate_file = "{cert.pem}"\n',
            "client_secret_file, client_",
        ),
        ('client_secret = "s"\nclient_secret_file = "{secret.txt}"\n', "client_secret, client_secret_file"),
    ],
)
def test_a_sharepoint_target_without_exactly_one_credential_exits_2_naming_the_keys(
    tmp_path: Path, files: dict[str, Path], keys: str, given: str
) -> None:
    config = tmp_path / "cloudwatcher.toml"
    body = keys.replace("{cert.pem}", str(files["cert.pem"])).replace("{secret.txt}", str(files["secret.txt"]))
    config.write_text(f'state_dir = "{tmp_path / "state"}"\n' + SHAREPOINT + body)
    result = run_check(config, tmp_path)
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert "exactly one of client_secret, client_secret_file or client_certificate_file" in line, line
    assert given in line


def test_each_single_way_to_sign_in_loads(tmp_path: Path, files: dict[str, Path]) -> None:
    config = tmp_path / "cloudwatcher.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state"}"\n'
        + DRIVE.replace('"gd"', '"shared"')
        + f'service_account_file = "{files["key.json"]}"\nshared_drive_id = "0A"\n'
        + DRIVE.replace('"gd"', '"delegated"')
        + f'service_account_file = "{files["key.json"]}"\nimpersonate = "field-ops@example.com"\n'
        + DRIVE.replace('"gd"', '"user"')
        + f'oauth_client_file = "{files["client.json"]}"\ntoken_file = "{tmp_path / "not-yet.json"}"\n'
        + SHAREPOINT
        + f'client_certificate_file = "{files["cert.pem"]}"\n'
    )
    targets = {target.name: target for target in load_settings(config).target_list}
    assert isinstance(targets["delegated"], GoogleDriveTarget) and targets["delegated"].impersonate
    assert isinstance(targets["user"], GoogleDriveTarget) and targets["user"].token_file == tmp_path / "not-yet.json"
    assert isinstance(targets["sp"], SharePointTarget) and targets["sp"].client_certificate_file == files["cert.pem"]
