"""CloudWatcher: a drop-folder sync daemon with a PostgreSQL ledger."""

from importlib.metadata import PackageNotFoundError, version

try:
    # The one version source is pyproject.toml; the installed metadata carries it here, so
    # `cloudwatcher --version`, `/status` and the instances table can never disagree.
    __version__ = version("cloudwatcher")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
__all__ = ["__version__"]
