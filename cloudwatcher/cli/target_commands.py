"""Commands about one target: ``pause``, ``resume``, ``authorize`` (a user's sign-in)."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

import typer
from rich.markup import escape

from cloudwatcher.cli.common import ConfigOption, TargetArgument, configured_target, console, fail, settings_from
from cloudwatcher.cli.database import with_database
from cloudwatcher.config import GoogleDriveTarget

__all__ = ["SignInProvider", "authorize", "pause", "resume"]


def pause(target: TargetArgument, config: ConfigOption = None) -> None:
    """Stop uploads to TARGET, for every daemon on the database and across restarts; files are still recorded."""
    from cloudwatcher.daemon.upload.pauses import pause_target, who_is_pausing

    settings = settings_from(config)
    name = configured_target(settings, target)
    if with_database(settings, lambda connection: pause_target(connection, name, who_is_pausing())):
        console.print(f"paused uploads to {escape(name)}; `cloudwatcher resume {escape(name)}` restarts them")
    else:
        console.print(f"{escape(name)} was already paused")


def resume(target: TargetArgument, config: ConfigOption = None) -> None:
    """Restart uploads to TARGET after `cloudwatcher pause`."""
    from cloudwatcher.daemon.upload.pauses import resume_target

    settings = settings_from(config)
    name = configured_target(settings, target)
    if with_database(settings, lambda connection: resume_target(connection, name)):
        console.print(f"resumed uploads to {escape(name)}")
    else:
        console.print(f"{escape(name)} was not paused")


class SignInProvider(StrEnum):
    """Providers whose sign-in needs a person's consent (only Drive so far)."""

    google_drive = "google-drive"


def authorize(
    provider: Annotated[SignInProvider, typer.Argument(help="the provider: google-drive")],
    target: TargetArgument,
    config: ConfigOption = None,
) -> None:
    """Sign TARGET in as a user: prints a consent URL, reads the code, stores the refresh token in token_file."""
    from cloudwatcher.providers.base import ProviderError
    from cloudwatcher.providers.google_drive.authorize import AuthorizeError
    from cloudwatcher.providers.google_drive.authorize import authorize as authorize_drive

    settings = settings_from(config)
    name = configured_target(settings, target)
    chosen = next(t for t in settings.target_list if t.name == name)
    if not isinstance(chosen, GoogleDriveTarget):
        fail(f"target {name!r} is a {chosen.provider} target, not {provider.value}", 2)
    if chosen.oauth_client_file is None:
        fail(f"target {name!r} signs in with a service account, which needs no authorization", 2)
    try:
        written = authorize_drive(chosen, show=lambda text: print(text, flush=True), read_code=sys.stdin.readline)
    except (AuthorizeError, ProviderError) as exc:
        fail(str(exc), 1)
    else:
        # Plain output: rich would wrap a long path, and scripts read it.
        sys.stdout.write(f"signed in; the refresh token is in {written} (readable by its owner only)\n")
