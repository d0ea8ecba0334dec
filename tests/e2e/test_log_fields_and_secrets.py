"""JSON log lines name the device; secrets from files and webhook URLs never reach a log line;
``files --json`` never prints an upload session's bearer URL."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cloudwatcher.cli import secrets_of
from cloudwatcher.config import GoogleDriveTarget, Settings, SharePointTarget
from cloudwatcher.config.settings import NotifySettings
from cloudwatcher.logs import REDACTED, configure_logging
from tests.support.daemon_process import DaemonProcess
from tests.support.log_capture import captured_logs, json_lines


@pytest.fixture
def stderr() -> Iterator[io.StringIO]:
    """Capture what our handler writes; restore the root logger afterwards."""
    with captured_logs() as buffer:
        yield buffer


@pytest.mark.parametrize(
    ("path", "device"),
    [
        ("truck-7/requests/photos/a.jpg", "truck-7"),
        ("kiosk.2/responses/r.json", "kiosk.2"),
        ("/var/lib/cloudwatcher/backups/x.dump", None),  # not a device's file
        ("../etc/passwd", None),  # not a device id
        ("-bad/requests/x", None),
        ("", None),
    ],
)
def test_a_line_about_a_devices_file_names_the_device(stderr: io.StringIO, path: str, device: str | None) -> None:
    configure_logging("json", stream=stderr)
    logging.getLogger("cloudwatcher.test").warning("about a file", extra={"path": path})
    [line] = json_lines(stderr)
    assert line.get("device") == device
    assert line["path"] == path


def test_a_device_given_by_the_call_site_is_kept(stderr: io.StringIO) -> None:
    configure_logging("json", stream=stderr)
    logging.getLogger("cloudwatcher.test").info("x", extra={"path": "truck-1/requests/a", "device": "truck-9"})
    assert json_lines(stderr)[0]["device"] == "truck-9"


def test_a_client_secret_read_from_its_file_is_masked(stderr: io.StringIO, tmp_path: Path) -> None:
    secret_file = tmp_path / "sp-secret"
    secret_file.write_text("Zq8~client-secret-from-file\n")
    settings = Settings(
        state_dir=tmp_path,
        targets=[
            SharePointTarget.model_validate(
                {
                    "name": "sp",
                    "provider": "sharepoint",
                    "tenant_id": "t",
                    "client_id": "c",
                    "drive_id": "d",
                    "client_secret_file": str(secret_file),
                }
            )
        ],
    )
    configure_logging("json", stream=stderr, secrets=secrets_of(settings))
    logging.getLogger("azure.identity").warning("token request sent with Zq8~client-secret-from-file in the body")
    text = stderr.getvalue()
    assert "Zq8~client-secret-from-file" not in text and REDACTED in text


def test_a_drive_users_client_secret_and_refresh_token_are_masked(stderr: io.StringIO, tmp_path: Path) -> None:
    client_file = tmp_path / "oauth-client.json"
    client_file.write_text(
        '{"installed": {"client_id": "1-x.apps.googleusercontent.com", "client_secret": "GOCSPX-clientSecret42"}}'
    )
    token_file = tmp_path / "token.json"
    token_file.write_text('{"refresh_token": "1//0gRefreshTokenValue"}')
    settings = Settings(
        state_dir=tmp_path,
        targets=[
            GoogleDriveTarget.model_validate(
                {
                    "name": "gd",
                    "provider": "google-drive",
                    "folder_id": "f",
                    "oauth_client_file": str(client_file),
                    "token_file": str(token_file),
                }
            )
        ],
    )
    configure_logging("json", stream=stderr, secrets=secrets_of(settings))
    logger = logging.getLogger("cloudwatcher.providers.google_drive")
    logger.warning("refresh with GOCSPX-clientSecret42 and 1//0gRefreshTokenValue failed")
    text = stderr.getvalue()
    assert "GOCSPX-clientSecret42" not in text and "1//0gRefreshTokenValue" not in text and REDACTED in text


def test_a_webhook_urls_path_and_query_are_masked(stderr: io.StringIO, tmp_path: Path) -> None:
    url = "https://hooks.example.com/services/T0AAA/B0BBB/xyzSecretPart?key=abc123def"
    settings = Settings(state_dir=tmp_path, notify=NotifySettings(webhook_url=url))
    configure_logging("text", stream=stderr, secrets=secrets_of(settings))
    logging.getLogger("cloudwatcher.notifications").warning("could not deliver to %s", url)
    text = stderr.getvalue()
    assert "xyzSecretPart" not in text and "abc123def" not in text
    assert "hooks.example.com" in text  # where it went is still visible


@pytest.mark.slow
async def test_files_json_never_prints_an_upload_sessions_url(daemon: Callable[..., DaemonProcess]) -> None:
    d = daemon()
    d.command("migrate")
    session = {
        "uploadUrl": "https://tenant.sharepoint.example/_api/v2.0/drives/d/items/x/uploadSession?tempauth=eyJ0eXAi",
        "offset": 327680,
        "parts": [{"resumable": "https://upload.example/resumable?upload_id=ABCD"}],
    }
    await d.query(
        "INSERT INTO cloud_file_refs (target, cloud_provider, device_id, local_path, file_type, content_sha256, "
        "file_size_bytes, file_mtime_ns, upload_session) "
        "VALUES ('local', 'local', 'truck-1', 'truck-1/requests/big.mp4', 'attachment', repeat('a', 64), 1, 1, $1)",
        json.dumps(session),
    )
    result = d.command("files", "--json")
    assert "tempauth" not in result.stdout and "upload_id" not in result.stdout
    [row] = json.loads(result.stdout)
    assert json.loads(row["upload_session"]) == {
        "uploadUrl": REDACTED,
        "offset": 327680,
        "parts": [{"resumable": REDACTED}],
    }


@pytest.mark.slow
async def test_the_running_daemons_json_lines_name_the_device(daemon: Callable[..., DaemonProcess]) -> None:
    one_attempt = {"initial_delay_seconds": 0.5, "max_delay_seconds": 1, "max_attempts": 1, "interval_seconds": 0.5}
    d = daemon(log_format="json", retry=one_attempt)
    d.mirror.write_bytes(b"")  # uploads fail: the daemon logs a warning about the device's file
    d.start()
    await d.wait_started()
    d.drop("van-12/requests/a.txt", b"a")
    d.drop("kiosk-4/responses/bad.json", b'{"request_id": "not a uuid", "status": "completed"}')

    async def warned() -> bool:
        return '"van-12/requests/a.txt"' in d.log() and "not ingested" in d.log()

    await d.wait_for(warned, 60, "warnings about both files")
    lines = [json.loads(line) for line in d.log().splitlines() if line.startswith("{")]
    about = [line for line in lines if line.get("path") == "van-12/requests/a.txt"]
    assert about and all(line["device"] == "van-12" for line in about)
    [answer] = [line for line in lines if "not ingested" in str(line["message"])]
    assert (answer["device"], answer["path"]) == ("kiosk-4", "kiosk-4/responses/bad.json")
    assert d.stop() == 0
