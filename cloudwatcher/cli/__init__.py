"""The ``cloudwatcher`` command line; ``main`` is the console script (``cloudwatcher = "cloudwatcher.cli:main"``).

:mod:`cloudwatcher.cli.app` holds the Typer app and registers the commands, which live in one
module per group; :mod:`cloudwatcher.cli.checks` and :mod:`cloudwatcher.cli.status_text` are
``check``'s probes and ``status``'s text.
"""

from cloudwatcher.cli.app import app, main
from cloudwatcher.cli.secrets import secrets_of

__all__ = ["app", "main", "secrets_of"]
