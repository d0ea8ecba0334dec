"""``cloudwatcher authorize google-drive TARGET``: a user's consent, turned into a stored refresh token.

The command is run once by an operator at a terminal; the daemon then signs in with the stored
token and refreshes its access tokens itself (see :mod:`cloudwatcher.providers.google_drive.signin`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cloudwatcher.providers.google_drive.config import GoogleDriveTarget
from cloudwatcher.providers.google_drive.signin import (
    OAuthClient,
    SignInAttempt,
    code_from,
    consent_url,
    exchange_code,
    store_refresh_token,
)
from cloudwatcher.providers.target import credential_path


class AuthorizeError(Exception):
    """The consent could not be turned into a token; the message says why."""


def authorize(config: GoogleDriveTarget, show: Callable[[str], None], read_code: Callable[[], str]) -> Path:
    """Show the consent URL, read back the code (or the redirect address), store the refresh token.

    Returns the token file written. ``show`` and ``read_code`` are the terminal's output and input.
    """
    if config.oauth_client_file is None or config.token_file is None:
        raise AuthorizeError(f"target {config.name!r} does not sign in as a user (oauth_client_file + token_file)")
    client = OAuthClient.from_file(credential_path(config.oauth_client_file))
    attempt = SignInAttempt.new()
    show(
        "Open this address in a browser, sign in as the Drive user the files should belong to and allow access:\n\n"
        f"{consent_url(client, attempt)}\n\n"
        "The browser then goes to an address on 127.0.0.1 that does not load; copy that whole address\n"
        "(or just its code=... value) and paste it here:"
    )
    try:
        code = code_from(read_code(), attempt.state)
    except ValueError as exc:
        raise AuthorizeError(str(exc)) from exc
    token_file = credential_path(config.token_file)
    store_refresh_token(token_file, exchange_code(client, code, attempt, config.ca_bundle))
    return token_file
