"""The ``cloudwatcher`` command (docs/configuration.md, Commands): the Typer app and its commands.

The commands live in modules by what they work on (``daemon_commands``, ``ledger_commands``,
``target_commands``, ``data_commands``); they are registered here, in one list, so that
``--help`` shows them in the order the documentation tells them.

Exit codes: 0 success; 2 bad configuration or usage (one line naming the key); 1 anything else.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated

import typer

from cloudwatcher import __version__
from cloudwatcher.cli import daemon_commands, data_commands, ledger_commands, target_commands
from cloudwatcher.cli.database import stop_servers_started_here

__all__ = ["app", "main"]

app = typer.Typer(
    help="Watch drop folders, keep a PostgreSQL ledger, mirror every file to its targets.",
    no_args_is_help=True,
    # --install-completion / --show-completion: Typer's shell completion (bash, zsh, fish, PowerShell).
    add_completion=True,
    pretty_exceptions_enable=False,
)

# In the order the documentation tells them; Typer names each after its function (db_url: db-url).
COMMANDS: tuple[Callable[..., None], ...] = (
    *(daemon_commands.run, daemon_commands.migrate, daemon_commands.db_url),
    *(ledger_commands.status, ledger_commands.files, ledger_commands.retry, daemon_commands.check),
    *(target_commands.pause, target_commands.resume, target_commands.authorize),
    *(data_commands.load, data_commands.backup, data_commands.restore),
)
for command in COMMANDS:
    app.command()(command)


@app.callback(invoke_without_command=True)
def main_callback(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        sys.stdout.write(f"cloudwatcher {__version__}\n")
        raise typer.Exit(0)


def main() -> None:
    try:
        app()
    finally:
        stop_servers_started_here()
