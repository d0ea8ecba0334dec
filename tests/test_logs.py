"""Log lines: JSON that parses and carries extras, text with fields, never a secret."""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import pytest

from cloudwatcher import logs
from cloudwatcher.logs import REDACTED, configure_logging, redact, register_secret
from tests.support.log_capture import captured_logs, json_lines, restored_root_logger


@pytest.fixture
def stderr() -> Iterator[io.StringIO]:
    """Capture what our handler writes; restore the root logger afterwards."""
    with captured_logs() as buffer:
        yield buffer


def test_json_lines_parse_and_carry_the_extra_fields(stderr: io.StringIO) -> None:
    configure_logging("json", stream=stderr)
    logging.getLogger("cloudwatcher.uploader").info(
        "uploaded %s",
        "truck-7/requests/a.json",
        extra={"path": "truck-7/requests/a.json", "device": "truck-7", "target": "sp", "ref_id": "r-1"},
    )
    [entry] = json_lines(stderr)
    assert entry["message"] == "uploaded truck-7/requests/a.json"
    assert entry["level"] == "INFO"
    assert entry["logger"] == "cloudwatcher.uploader"
    assert str(entry["timestamp"]).endswith("+00:00")
    assert {key: entry[key] for key in ("path", "device", "target", "ref_id")} == {
        "path": "truck-7/requests/a.json",
        "device": "truck-7",
        "target": "sp",
        "ref_id": "r-1",
    }


def test_json_exceptions_are_one_line_with_the_traceback(stderr: io.StringIO) -> None:
    configure_logging("json", stream=stderr)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("x").exception("failed")
    [entry] = json_lines(stderr)
    assert "ValueError: boom" in str(entry["exception"])


@pytest.mark.parametrize(
    ("message", "secret"),
    [
        (
            "calling graph with Authorization: Bearer eyJ0eXAiOiJKV1QiLCJhbGciOi.abc",
            "eyJ0eXAiOiJKV1QiLCJhbGciOi",
        ),
        ("token request body client_secret=Sup3rS3cret&grant_type=x", "Sup3rS3cret"),
        ('config {"client_secret": "with spaces inside"}', "with spaces inside"),
        ("connecting to postgresql://app:pa55word@db.internal/cw", "pa55word"),
        (
            "url https://x.sharepoint.com/upload?guid=1&tempauth=eyJhbGciOiJub25lIn0.e30.&dc=0",
            "eyJhbGciOiJub25lIn0",
        ),
        ("dsn host=db user=app password=hunter2 dbname=cw", "hunter2"),
        (
            "key -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----",
            "MIIEvQIBAD",
        ),
    ],
)
def test_json_lines_never_contain_a_secret(stderr: io.StringIO, message: str, secret: str) -> None:
    configure_logging("json", stream=stderr)
    logging.getLogger("cloudwatcher.providers").warning(message)
    [entry] = json_lines(stderr)
    assert secret not in stderr.getvalue()
    assert REDACTED in str(entry["message"])


def test_secrets_in_arguments_exceptions_and_extras_are_masked(stderr: io.StringIO) -> None:
    configure_logging("json", stream=stderr, secrets=["opaque-http-token-123"])
    try:
        raise ConnectionError("auth failed with password=hunter2")
    except ConnectionError:
        logging.getLogger("x").error(
            "retry with %s", "opaque-http-token-123", exc_info=True, extra={"url": "https://u:pw12345@h/"}
        )
    text = stderr.getvalue()
    assert "opaque-http-token-123" not in text
    assert "hunter2" not in text
    assert "pw12345" not in text
    [entry] = json_lines(stderr)
    assert "ConnectionError" in str(entry["exception"])


def test_registered_secrets_are_masked_wherever_they_appear() -> None:
    register_secret("a-distinctive-value-9876")
    register_secret("abc")  # too short to mask safely: ignored
    assert redact("x a-distinctive-value-9876 y abc") == f"x {REDACTED} y abc"


def test_ordinary_messages_are_left_alone() -> None:
    for text in (
        "password authentication failed for user app",
        "client_secret_file=/etc/cloudwatcher/secret is missing",
        "pageToken=abc next page",
        "uploaded truck-7/requests/a.json to sp in 0.3 s",
    ):
        assert redact(text) == text


def test_text_lines_are_plain_off_a_terminal_with_fields(stderr: io.StringIO) -> None:
    configure_logging("text", logging.DEBUG, stream=stderr)
    logging.getLogger("cloudwatcher.watcher").debug("noticed", extra={"device": "kiosk-1"})
    line = stderr.getvalue().strip()
    assert "DEBUG cloudwatcher.watcher: noticed [device=kiosk-1]" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_text_lines_redact_too(stderr: io.StringIO) -> None:
    configure_logging("text", stream=stderr)
    logging.getLogger("x").info("header Authorization: Bearer abcdef123456")
    assert "abcdef123456" not in stderr.getvalue()


def test_configuring_twice_keeps_one_handler_and_the_new_level(stderr: io.StringIO) -> None:
    configure_logging("text", stream=stderr)
    configure_logging("json", logging.WARNING, stream=stderr)
    logging.getLogger("x").info("hidden")
    logging.getLogger("x").warning("shown")
    assert [entry["message"] for entry in json_lines(stderr)] == ["shown"]


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log_format"):
        configure_logging("xml")  # type: ignore[arg-type]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_text_goes_through_rich_with_fields_and_redaction() -> None:
    terminal = FakeTerminal()
    with restored_root_logger():
        configure_logging("text", stream=terminal)
        assert type(logs._installed[0]).__name__ == "RichHandler"
        logging.getLogger("x").warning("token=abcdef123 rejected", extra={"target": "sp"})
    output = re.sub(r"\x1b\[[0-9;]*m", "", terminal.getvalue())
    assert "rejected" in output and "target=sp" in output
    assert "abcdef123" not in output


def _log_to_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log_format: Literal["text", "json"], emit: Callable[[], None]
) -> str:
    """What ``emit`` logs through a stream that ``$JOURNAL_STREAM`` names, as journald would receive it."""
    log_file = tmp_path / "journal"
    with log_file.open("w") as stream:
        info = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{info.st_dev}:{info.st_ino}")
        with restored_root_logger():
            configure_logging(log_format, logging.DEBUG, stream=stream)
            emit()
    return log_file.read_text()


def test_under_journald_text_lines_carry_their_priority_and_no_second_timestamp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def emit() -> None:
        log = logging.getLogger("cloudwatcher.x")
        log.debug("looking")
        log.info("started")
        log.warning("slow")
        log.error("broken")
        log.critical("gone")

    assert _log_to_journal(tmp_path, monkeypatch, "text", emit) == (
        "<7>DEBUG cloudwatcher.x: looking\n"
        "<6>INFO cloudwatcher.x: started\n"
        "<4>WARNING cloudwatcher.x: slow\n"
        "<3>ERROR cloudwatcher.x: broken\n"
        "<2>CRITICAL cloudwatcher.x: gone\n"
    )


def test_under_journald_every_line_of_a_traceback_carries_the_error_priority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def emit() -> None:
        try:
            raise RuntimeError("first line\nsecond line")
        except RuntimeError:
            logging.getLogger("cloudwatcher.x").exception("upload crashed")

    lines = _log_to_journal(tmp_path, monkeypatch, "text", emit).splitlines()
    assert len(lines) > 3
    assert all(line.startswith("<3>") for line in lines), lines
    assert "<3>RuntimeError: first line" in lines and "<3>second line" in lines


def test_under_journald_json_lines_carry_their_priority_before_the_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _log_to_journal(tmp_path, monkeypatch, "json", lambda: logging.getLogger("x").warning("slow"))
    assert text.startswith("<4>{")
    assert json.loads(text.removeprefix("<4>"))["message"] == "slow"


def test_off_journald_lines_carry_no_priority_prefix(stderr: io.StringIO) -> None:
    configure_logging("text", stream=stderr)
    logging.getLogger("cloudwatcher.x").warning("slow")
    assert "<4>" not in stderr.getvalue() and "WARNING cloudwatcher.x: slow" in stderr.getvalue()
