"""Logging for a terminal and for journald, with secrets kept out of both.

``text``: human lines (Rich on a terminal, plain lines otherwise, e.g. under systemd, where
journald adds its own timestamps). ``json``: one JSON object per line with ``timestamp``,
``level``, ``logger``, ``message`` and every ``extra=`` field the daemon passes (``path``,
``device``, ``target``, ``ref_id``, ...), so ``journalctl -o cat | jq`` can filter by them.

Under journald (``$JOURNAL_STREAM`` names our stderr) every line starts with its syslog
priority, ``<3>`` for an error up to ``<7>`` for debug: journald strips the prefix and files
the line under that priority (``SyslogLevelPrefix=``, on by default), so ``journalctl -p
warning`` shows warnings and worse. A traceback's continuation lines carry it too, because
journald makes each line its own entry.

Redaction is a filter on our handlers, not on loggers, so it also covers third-party
libraries (SDKs that log URLs, headers or exception texts): bearer tokens, ``password=``,
``client_secret``, passwords in URLs, pre-signed URL signatures and private keys are masked,
and so is every literal secret value registered with :func:`register_secret`.
"""

from __future__ import annotations

import io
import json
import logging
import logging.handlers
import os
import re
import sys
import threading
import traceback
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

__all__ = [
    "LOG_LEVELS",
    "REDACTED",
    "DeviceFieldFilter",
    "JournalPriorityFormatter",
    "JsonFormatter",
    "RedactingFilter",
    "configure_logging",
    "redact",
    "register_secret",
]

#: The ``log_level`` configuration values and the logging levels they stand for.
LOG_LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

REDACTED = "[REDACTED]"

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys() | {"message", "asctime", "taskName"}
)

_SECRET_KEYS = (
    r"client_secret|password|passwd|pwd|secret|api_key|apikey|access_token|refresh_token|id_token"
    r"|http_token|token|assertion|client_assertion|tempauth|sig|signature|x-amz-signature"
    r"|x-amz-security-token|x-amz-credential|private_key|aws_secret_access_key|aws_session_token"
)
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # PEM private keys (service-account files, client certificates).
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.S),
        REDACTED,
    ),
    # Authorization: Bearer xyz / Basic xyz, and a bare "Bearer xyz".
    (
        re.compile(r"(?i)\b(authorization[\"']?\s*[:=]\s*[\"']?)(?:bearer|basic|token)?\s*[^\s\"',;}]+"),
        r"\1" + REDACTED,
    ),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"), "Bearer " + REDACTED),
    # "key": "value" and 'key': 'value' (JSON, Python reprs): the whole quoted value.
    (re.compile(rf"(?i)([\"']?\b(?:{_SECRET_KEYS})\b[\"']?\s*[:=]\s*)\"[^\"]*\""), rf'\1"{REDACTED}"'),
    (re.compile(rf"(?i)([\"']?\b(?:{_SECRET_KEYS})\b[\"']?\s*[:=]\s*)'[^']*'"), rf"\1'{REDACTED}'"),
    # key=value, key: value, URL query parameters: up to a separator.
    (
        re.compile(
            rf"(?i)([\"']?\b(?:{_SECRET_KEYS})\b[\"']?\s*[:=]\s*)(?![\"'])(?!{re.escape(REDACTED)})[^\s\"'&,;}}]+"
        ),
        r"\1" + REDACTED,
    ),
    # scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@"), r"\1" + REDACTED + "@"),
]

# The device-id rule of the watched layout (kept here so logging imports nothing of the daemon).
_DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,49}")

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Mask this literal value wherever it appears in a log line (tokens, client secrets).

    Values shorter than 6 characters are ignored: masking them would garble ordinary words.
    """
    if value and len(value) >= 6:
        with _secrets_lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """``text`` with every secret the patterns or :func:`register_secret` know masked."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (and exception text, and string extras) with :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = f"{record.msg!r} % {record.args!r}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
            record.exc_info = None  # the formatter must use the redacted text
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRIBUTES and isinstance(value, str):
                setattr(record, key, redact(value))
        return True


class DeviceFieldFilter(logging.Filter):
    """Adds ``device`` to every line about a device's file, from the ``path`` it already carries.

    Call sites pass ``extra={"path": local_path, ...}``; a local path's first step is the device
    id (``<device_id>/<requests|responses>/...``), so deriving it here gives every such line the
    ``device`` field without each call site repeating it. Absolute paths (backups, the state
    directory) and steps that are not device ids get none.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        path = getattr(record, "path", None)
        if getattr(record, "device", None) is None and isinstance(path, str) and not path.startswith("/"):
            first = path.split("/", 1)[0]
            if _DEVICE_ID.fullmatch(first):
                record.device = first
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in vars(record).items() if key not in _STANDARD_ATTRIBUTES}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp (UTC, ISO 8601), level, logger, message, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _extras(record).items():
            entry.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Plain lines with the extra fields appended as ``key=value``."""

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = _extras(record)
        if not extras:
            return line
        fields = " ".join(f"{key}={value}" for key, value in extras.items())
        first, newline, rest = line.partition("\n")
        return f"{first} [{fields}]{newline}{rest}"


class JournalPriorityFormatter(logging.Formatter):
    """Prefixes every line another formatter writes with the record's syslog priority (``<4>``)."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        # The standard library's own level -> syslog name -> number tables (RFC 5424 severities).
        syslog = logging.handlers.SysLogHandler
        priority = syslog.priority_names[syslog.priority_map.get(record.levelname, "warning")]
        prefix = f"<{priority}>"
        return "\n".join(prefix + line for line in self.inner.format(record).split("\n"))


# Libraries that log request details (URLs, headers) at INFO: keep them to warnings.
_CHATTY_LOGGERS = (
    "azure",
    "msal",
    "urllib3",
    "botocore",
    "boto3",
    "googleapiclient",
    "google.auth",
    "apscheduler",
)

_installed: list[logging.Handler] = []


def configure_logging(
    log_format: Literal["text", "json"],
    level: int = logging.INFO,
    *,
    secrets: Iterable[str | None] = (),
    stream: TextIO | None = None,
) -> None:
    """Send the root logger to stderr in ``log_format``; safe to call again (replaces our handler).

    ``secrets``: literal values to mask in every line (see :func:`register_secret`).
    ``stream``: where to write instead of ``sys.stderr`` (tests).
    """
    out = sys.stderr if stream is None else stream
    for secret in secrets:
        register_secret(secret)
    handler: logging.Handler
    if log_format == "json":
        handler = logging.StreamHandler(out)
        handler.setFormatter(JsonFormatter())
    elif log_format == "text":
        handler = _text_handler(out)
    else:
        raise ValueError(f"log_format must be 'text' or 'json', not {log_format!r}")
    if _writes_to_journal(out) and handler.formatter is not None:
        handler.setFormatter(JournalPriorityFormatter(handler.formatter))
    handler.addFilter(DeviceFieldFilter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in _installed:
        root.removeHandler(old)
    _installed[:] = [handler]
    root.addHandler(handler)
    root.setLevel(level)
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    logging.captureWarnings(True)


def _text_handler(out: TextIO) -> logging.Handler:
    if out.isatty():
        from rich.console import Console
        from rich.logging import RichHandler

        rich_handler = RichHandler(console=Console(file=out), show_path=False, markup=False, rich_tracebacks=False)
        rich_handler.setFormatter(TextFormatter("%(message)s"))
        return rich_handler
    handler = logging.StreamHandler(out)
    # journald stamps every line itself; a second timestamp only widens `journalctl` output.
    fmt = (
        "%(levelname)s %(name)s: %(message)s"
        if _writes_to_journal(out)
        else "%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    handler.setFormatter(TextFormatter(fmt))
    return handler


def _writes_to_journal(out: TextIO) -> bool:
    """True when ``out`` is the journald stream systemd connected (``$JOURNAL_STREAM`` = dev:inode)."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    if not expected:
        return False
    try:
        info = os.fstat(out.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        return False
    return expected == f"{info.st_dev}:{info.st_ino}"
