"""What every command shares: the options, the console, exiting with a message, JSON output.

Exit codes: 0 success; 2 bad configuration or usage (one line naming the key); 1 anything else.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from cloudwatcher.config import ConfigError, Settings, load_settings
from cloudwatcher.jsonvalue import json_default

__all__ = [
    "ConfigOption",
    "JsonOption",
    "TargetArgument",
    "configured_target",
    "console",
    "fail",
    "print_json",
    "settings_from",
]

console = Console()

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML configuration file (else $CLOUDWATCHER_CONFIG, else "
        "/etc/cloudwatcher/cloudwatcher.toml when it exists).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
TargetArgument = Annotated[str, typer.Argument(help="a target's name, as in the configuration")]


def fail(message: str, code: int) -> NoReturn:
    """Print ``cloudwatcher: message`` on stderr and exit with ``code``."""
    sys.stderr.write(f"cloudwatcher: {message}\n")
    raise typer.Exit(code)


def settings_from(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        fail(str(exc), 2)


def configured_target(settings: Settings, name: str) -> str:
    """``name`` when the configuration has such a target; else exit 2 naming it."""
    names = [target.name for target in settings.target_list]
    if name not in names:
        fail(f"unknown target {name!r}; configured targets: {', '.join(names)}", 2)
    return name


def print_json(value: Any) -> None:
    """``value`` as indented JSON, database values by the program's one rule (:mod:`cloudwatcher.jsonvalue`)."""
    sys.stdout.write(json.dumps(value, indent=2, default=json_default) + "\n")
