"""The database schema: numbered SQL migrations, the migrator, named queries (``queries/*.sql``, loaded by
``sql.py``) and ``schema.sql``, the full schema the migrations produce (``dump.py`` rewrites it)."""

from cloudwatcher.schema.migrator import apply_migrations, available_migrations, schema_problem, schema_version

__all__ = ["apply_migrations", "available_migrations", "schema_problem", "schema_version"]
