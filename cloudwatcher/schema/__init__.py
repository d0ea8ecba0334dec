"""The database schema: numbered SQL migrations, the migrator, and named queries."""

from cloudwatcher.schema.migrator import apply_migrations, available_migrations, schema_problem, schema_version

__all__ = ["apply_migrations", "available_migrations", "schema_problem", "schema_version"]
