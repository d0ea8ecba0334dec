"""Settings models (documented in docs/configuration.md).

Precedence is flags > environment (``CLOUDWATCHER_`` prefix, ``__`` between nested keys,
JSON for lists) > TOML file > defaults; :mod:`cloudwatcher.config.loading` wires the sources.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

# Each provider's target keys live in its own folder; the registry lists them and builds the
# union of ``targets``. Re-exported here, where the core settings' callers look for them.
from cloudwatcher.providers.google_drive.config import GoogleDriveTarget
from cloudwatcher.providers.local.config import LocalTarget
from cloudwatcher.providers.registry import TargetConfig
from cloudwatcher.providers.s3.config import S3Target
from cloudwatcher.providers.sharepoint.config import SharePointTarget
from cloudwatcher.providers.target import ReadableFile, TargetBase, credential_path, parse_byte_rate

__all__ = [
    "BackupSettings",
    "GoogleDriveTarget",
    "LocalTarget",
    "NotifySettings",
    "RetrySettings",
    "S3Target",
    "Settings",
    "SharePointTarget",
    "TargetConfig",
    "credential_path",
    "default_state_dir",
    "parse_byte_rate",
    "toml_file_in_use",
]

# The TOML file chosen by the loader; a ContextVar so that settings_customise_sources
# (a classmethod pydantic calls for us) can see which file this load uses.
toml_file_in_use: ContextVar[Path | None] = ContextVar("toml_file_in_use", default=None)


def default_state_dir() -> Path:
    """``$STATE_DIRECTORY`` (systemd's StateDirectory=), else ``~/.local/state/cloudwatcher``."""
    from_systemd = os.environ.get("STATE_DIRECTORY")
    if from_systemd:
        # systemd joins several StateDirectory= entries with ':'; the first is ours.
        return Path(from_systemd.split(":")[0])
    return Path.home() / ".local" / "state" / "cloudwatcher"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RetrySettings(_Strict):
    initial_delay_seconds: float = Field(default=5.0, gt=0)
    max_delay_seconds: float = Field(default=3600.0, gt=0)
    max_attempts: int = Field(default=10, ge=1)
    interval_seconds: float = Field(default=10.0, gt=0)


class BackupSettings(_Strict):
    dir: Path | None = None
    interval_hours: float = Field(default=24.0, ge=0)
    keep: int = Field(default=7, ge=1)


class NotifySettings(_Strict):
    webhook_url: str | None = None


class Settings(BaseSettings):
    """Every configuration key of the daemon, with its default."""

    model_config = SettingsConfigDict(
        env_prefix="CLOUDWATCHER_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    state_dir: Path = Field(default_factory=default_state_dir)
    watch_root: Path | None = None
    database_url: str | None = None
    targets: list[TargetConfig] | None = None
    settle_seconds: float = Field(default=1.0, ge=0)
    scan_interval_seconds: float = Field(default=300.0, gt=0)
    device_idle_seconds: float = Field(default=900.0, gt=0)
    max_request_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    # Which users a device may act for (devices bound by `cloudwatcher load`): "listed" binds
    # listed devices only, "strict" also refuses unlisted devices, "off" trusts the envelope.
    device_binding: Literal["listed", "strict", "off"] = "listed"
    retry: RetrySettings = Field(default_factory=RetrySettings)
    upload_concurrency: int = Field(default=4, ge=1, le=256)
    http_bind: str = "127.0.0.1:8765"
    http_token: SecretStr | None = None
    http_token_file: ReadableFile | None = None
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    backup: BackupSettings = Field(default_factory=BackupSettings)
    watch_mode: Literal["auto", "events", "poll"] = "auto"
    poll_interval_seconds: float = Field(default=2.0, gt=0)
    after_sync: Literal["keep", "archive", "delete"] = "keep"
    after_sync_min_age_seconds: float = Field(default=86400.0, ge=0)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    request_retention_days: int = Field(default=90, ge=1)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = toml_file_in_use.get()
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @field_validator("http_bind")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if value and not re.fullmatch(r"(\[[0-9A-Fa-f:]+\]|[A-Za-z0-9.-]*):\d{1,5}", value):
            raise ValueError("expected HOST:PORT, e.g. 127.0.0.1:8765 (empty disables it)")
        return value

    @model_validator(mode="after")
    def _fill_derived_defaults(self) -> Settings:
        self.state_dir = self.state_dir.expanduser()
        if self.watch_root is None:
            self.watch_root = self.state_dir / "inbox"
        self.watch_root = self.watch_root.expanduser()
        if self.targets is None:
            self.targets = [LocalTarget(name="local", provider="local", root=self.state_dir / "mirror")]
        names = [target.name for target in self.targets]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"target names must be unique; repeated: {', '.join(duplicates)}")
        if self.backup.dir is None:
            self.backup.dir = self.state_dir / "backups"
        if self.retry.max_delay_seconds < self.retry.initial_delay_seconds:
            raise ValueError("retry.max_delay_seconds must not be below retry.initial_delay_seconds")
        return self

    # Typed accessors: the validator above guarantees these are set.
    @property
    def watch_path(self) -> Path:
        assert self.watch_root is not None
        return self.watch_root

    @property
    def target_list(self) -> list[TargetBase]:
        assert self.targets is not None
        return list(self.targets)

    @property
    def backup_dir(self) -> Path:
        assert self.backup.dir is not None
        return self.backup.dir

    def api_token(self) -> str | None:
        """The bearer token for HTTP actions, from ``http_token`` or ``http_token_file``."""
        if self.http_token is not None:
            return self.http_token.get_secret_value()
        if self.http_token_file is not None:
            return credential_path(self.http_token_file).read_text().strip()
        return None

    def uses_embedded_database(self) -> bool:
        return not self.database_url

    @property
    def scheduled_backups(self) -> bool:
        """Whether the daemon takes scheduled backups.

        On by default for the embedded database (nobody else backs it up); for any other
        database only when ``backup.interval_hours`` is set, so that an admin with their own
        backups is not surprised by dumps; ``interval_hours = 0`` turns them off everywhere.
        """
        if self.backup.interval_hours <= 0:
            return False
        return self.uses_embedded_database() or "interval_hours" in self.backup.model_fields_set
