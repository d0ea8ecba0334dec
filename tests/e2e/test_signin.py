"""Each way to sign in, end to end: the ``cloudwatcher`` commands and the daemon subprocess against the
emulators (issue #19: a service account alone has no Drive storage, so these are the ways that work).

The Drive OAuth path runs ``cloudwatcher authorize google-drive TARGET`` with the code fed on its
stdin, then the daemon uploads with the stored refresh token and renews an expired access token
by itself. Impersonation shows up at the token endpoint as the JWT's ``sub``; SharePoint signs in
with a certificate's client assertion.
"""

from __future__ import annotations

import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon_process import DaemonProcess
from tests.support.emulators.drive import DriveEmulator
from tests.support.emulators.fixtures import google_drive_settings, sharepoint_settings
from tests.support.emulators.graph import GraphEmulator

pytestmark = pytest.mark.slow
Daemon = Callable[..., DaemonProcess]


def oauth_drive_target(emulator: DriveEmulator, token_file: Path) -> dict[str, Any]:
    settings = google_drive_settings(
        emulator, oauth_client_file=str(emulator.oauth_client_file), token_file=str(token_file)
    )
    del settings["service_account_file"]
    return settings


def authorize_on_the_terminal(
    d: DaemonProcess, emulator: DriveEmulator, target: str
) -> subprocess.CompletedProcess[str]:
    """Run the command as a person would: read the URL it prints, consent, paste the address back."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cloudwatcher", "authorize", "google-drive", target, "--config", str(d.config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdin is not None
    printed: list[str] = []
    for line in process.stdout:
        printed.append(line)
        if line.startswith(emulator.url):
            break
    else:
        process.wait(timeout=60)
        raise AssertionError(
            f"no consent URL printed: {''.join(printed)}{process.stderr.read() if process.stderr else ''}"
        )
    address = emulator.consent(line.strip())
    stdout, stderr = process.communicate(address + "\n", timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, "".join(printed) + stdout, stderr)


async def test_a_user_authorized_on_the_command_line_is_who_the_daemon_uploads_as_and_it_renews_its_token(
    daemon: Daemon, drive_emulator: DriveEmulator, tmp_path: Path
) -> None:
    token_file = tmp_path / "credentials" / "gdrive-token.json"
    d = daemon(targets=[oauth_drive_target(drive_emulator, token_file)])
    result = authorize_on_the_terminal(d, drive_emulator, "gdrive")
    assert result.returncode == 0, result.stderr
    assert str(token_file) in result.stdout
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert [grant for grant, _ in drive_emulator.grants] == ["authorization_code"]

    d.start()
    d.drop("truck-1/requests/first.json", b'{"as": "the user"}')
    await d.wait_synced(1)
    drive_emulator.expire_tokens()
    d.drop("truck-1/requests/second.json", b'{"after": "expiry"}')

    # Not a row count: first.json's response file is mirrored too and can be the second row.
    async def second_uploaded() -> bool:
        return bool(drive_emulator.lookup(drive_emulator.root_folder_id, "truck-1/requests/second.json"))

    await d.wait_for(second_uploaded, 60, "second.json in Drive, uploaded after the tokens expired")
    assert d.stop() == 0

    grants = [grant for grant, _ in drive_emulator.grants]
    assert grants[0] == "authorization_code" and grants.count("refresh_token") >= 2
    assert "authorization_code" not in grants[1:]  # the daemon never needs the person again
    (second,) = drive_emulator.lookup(drive_emulator.root_folder_id, "truck-1/requests/second.json")
    assert second.content == b'{"after": "expiry"}'


def test_authorize_refuses_a_target_that_signs_in_with_a_service_account(
    daemon: Daemon, drive_emulator: DriveEmulator
) -> None:
    d = daemon(targets=[google_drive_settings(drive_emulator)])
    result = d.command("authorize", "google-drive", "gdrive", check=False)
    assert result.returncode == 2 and "service account" in result.stderr
    unknown = d.command("authorize", "google-drive", "no-such-target", check=False)
    assert unknown.returncode == 2 and "no-such-target" in unknown.stderr
    assert drive_emulator.grants == []


async def test_the_daemon_impersonating_a_user_asks_for_that_users_tokens(
    daemon: Daemon, drive_emulator: DriveEmulator
) -> None:
    d = daemon(targets=[google_drive_settings(drive_emulator, impersonate="field-ops@example.com")]).start()
    d.drop("truck-2/requests/as-user.bin", b"delegated")
    await d.wait_synced(1)
    assert d.stop() == 0
    assert drive_emulator.grants
    assert {subject for _, subject in drive_emulator.grants} == {"field-ops@example.com"}


async def test_the_daemon_signs_in_to_sharepoint_with_a_certificate(
    daemon: Daemon, graph_emulator: GraphEmulator
) -> None:
    settings = sharepoint_settings(graph_emulator, client_certificate_file=str(graph_emulator.certificate_pem))
    del settings["client_secret"]
    d = daemon(targets=[settings]).start()
    d.drop("truck-3/requests/cert.txt", b"signed, not secret")
    await d.wait_synced(1)
    assert d.stop() == 0
    assert graph_emulator.file_bytes("CloudWatcher/truck-3/requests/cert.txt") == b"signed, not secret"
    assert graph_emulator.assertions and all(c["iss"] == graph_emulator.client_id for c in graph_emulator.assertions)
