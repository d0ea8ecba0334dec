"""The one place that decides which PostgreSQL URL the daemon and every command use."""

from __future__ import annotations

from cloudwatcher.config import Settings
from cloudwatcher.database.embedded import EmbeddedPostgres


def embedded_server(settings: Settings) -> EmbeddedPostgres:
    return EmbeddedPostgres(settings.state_dir / "postgres")


def resolve_database_url(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """``database_url`` when configured, else the embedded server's (started if needed)."""
    if settings.database_url:
        return settings.database_url, None
    server = embedded_server(settings)
    return server.ensure_running(), server
