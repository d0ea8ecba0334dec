"""Secrets kept out of what the program prints and logs.

``cloudwatcher run`` registers every configured secret with the log formatter before the first
line is written (and again on SIGHUP); ``files`` masks the upload sessions' capability URLs.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any
from urllib.parse import urlsplit

from cloudwatcher.config import GoogleDriveTarget, Settings, SharePointTarget

__all__ = ["secrets_of", "without_capabilities"]


def secrets_of(settings: Settings) -> list[str | None]:
    """Every configured secret, so that no log line ever shows one.

    Secrets read from ``*_file`` keys count as much as inline ones, and so does a webhook URL's
    path and query: chat and incident webhooks carry their credential there.
    """
    found: list[str | None] = [settings.api_token()]
    for target in settings.target_list:
        if isinstance(target, SharePointTarget) and target.client_certificate_file is None:
            with contextlib.suppress(OSError):  # unreadable since it was checked: the target fails on its own
                found.append(target.secret())
        elif isinstance(target, GoogleDriveTarget) and target.oauth_client_file is not None:
            from cloudwatcher.providers.google_drive.signin import user_secrets

            found.extend(user_secrets(target))
    if settings.notify.webhook_url:
        webhook = urlsplit(settings.notify.webhook_url)
        found.extend([webhook.path.rstrip("/") if webhook.path.strip("/") else None, webhook.query or None])
    return found


def without_capabilities(session: str | None) -> str | None:
    """An upload session with its URLs masked: a Graph ``uploadUrl`` or a Drive resumable URI is
    a bearer capability (anyone holding it can write the file), so it never leaves the ledger."""
    if session is None:
        return None
    from cloudwatcher.logs import REDACTED

    def mask(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: mask(item) for key, item in value.items()}
        if isinstance(value, list):
            return [mask(item) for item in value]
        if isinstance(value, str) and "://" in value:
            return REDACTED
        return value

    try:
        return json.dumps(mask(json.loads(session)))
    except ValueError:
        return REDACTED
