"""CloudWatcher: a drop-folder sync daemon with a PostgreSQL ledger."""

__version__ = "0.1.0"
__all__ = ["__version__"]
