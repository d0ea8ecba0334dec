"""Where the database is (embedded or configured) and how to reach it."""

from cloudwatcher.database.embedded import EmbeddedPostgres, EmbeddedPostgresError
from cloudwatcher.database.resolve import resolve_database_url

__all__ = ["EmbeddedPostgres", "EmbeddedPostgresError", "resolve_database_url"]
