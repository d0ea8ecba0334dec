"""Settings models: each key's ``Field`` description is its documentation.

README's settings table, docs/configuration.md and systemd/cloudwatcher.toml.example are
generated from these models (``make docs``, :mod:`cloudwatcher.config.reference`).

Precedence is flags > environment (``CLOUDWATCHER_`` prefix, ``__`` between nested keys,
JSON for lists) > TOML file > defaults; :mod:`cloudwatcher.config.loading` wires the sources.
"""

from __future__ import annotations

import os
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

from cloudwatcher.config.bind import parse_bind

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
    initial_delay_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Seconds before a failed upload's first retry; later delays grow exponentially, with jitter.",
    )
    max_delay_seconds: float = Field(
        default=3600.0, gt=0, description="Longest delay between retries, in seconds; at least `initial_delay_seconds`."
    )
    max_attempts: int = Field(
        default=10,
        ge=1,
        description="Attempts after which a failed upload gives up (no next attempt) until `cloudwatcher retry`.",
    )
    interval_seconds: float = Field(
        default=10.0, gt=0, description="Seconds between runs of the job retrying failures."
    )


class BackupSettings(_Strict):
    dir: Path | None = Field(
        default=None,
        description="Folder the scheduled `pg_dump` backups are written to; unset means `<state_dir>/backups`.",
    )
    interval_hours: float = Field(
        default=24.0,
        ge=0,
        description="Hours between scheduled backups: on by default for the embedded database only "
        "(for another database, setting this key turns them on), and `0` turns them off.",
    )
    keep: int = Field(
        default=7, ge=1, description="Number of scheduled backups kept; older ones are deleted after each new one."
    )


class NotifySettings(_Strict):
    webhook_url: str | None = Field(
        default=None,
        description="URL that receives a JSON POST for each event (`file.gave_up`, `target.failing`, "
        "`target.recovered`, `target.full`, each with a unique `id`), retried with backoff for up to a day; "
        "unset sends none.",
        examples=["https://alerts.example.com/hooks/cloudwatcher"],
    )


class Settings(BaseSettings):
    """Every configuration key of the daemon, with its default."""

    model_config = SettingsConfigDict(
        env_prefix="CLOUDWATCHER_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    state_dir: Path = Field(
        default_factory=default_state_dir,
        description="Folder of the embedded database, the default inbox and mirror, the backups and the archive.",
    )
    watch_root: Path | None = Field(
        default=None,
        description="Folder the devices drop files into, as `<watch_root>/<device_id>/requests/...`; "
        "unset means `<state_dir>/inbox`.",
    )
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL 15+ libpq URI, Unix sockets included (`postgresql://u@/db?host=/run/postgresql`); "
        "unset runs the embedded server in `<state_dir>/postgres`.",
        examples=["postgresql://cloudwatcher@/cloudwatcher?host=/run/postgresql"],
    )
    targets: list[TargetConfig] | None = Field(
        default=None,
        description="Where files are mirrored: a list of targets, each with a `name`, a `provider` and that "
        'provider\'s keys; unset means one local target `{name = "local", provider = "local", '
        'root = "<state_dir>/mirror"}`.',
    )
    settle_seconds: float = Field(
        default=1.0,
        ge=0,
        description="Seconds a file's size and modification time must stay unchanged before it counts as finished.",
    )
    scan_interval_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Seconds between full reconcile scans of the watch root, which catch what watch events missed.",
    )
    device_idle_seconds: float = Field(
        default=900.0,
        gt=0,
        description="Seconds of silence after which a device's connection (`device_connections`) is closed.",
    )
    max_request_bytes: int = Field(
        default=10 * 1024 * 1024,
        gt=0,
        description="Largest `.json` request file, in bytes; a larger one is still mirrored but answered `too_large`.",
    )
    device_binding: Literal["listed", "strict", "off"] = Field(
        default="listed",
        description="Which users a device may act for: `listed` (a device listed by `cloudwatcher load` acts only "
        "for its users; unlisted devices are not restricted and each is warned about once), "
        "`strict` (unlisted devices act for nobody) or `off` (the envelope's user is taken at face value).",
    )
    retry: RetrySettings = Field(default_factory=RetrySettings, description="Retries of failed uploads.")
    upload_concurrency: int = Field(default=4, ge=1, le=256, description="Parallel uploads per target, from 1 to 256.")
    http_bind: str = Field(
        default="127.0.0.1:8765",
        description="HOST:PORT of the status page, `/healthz`, `/metrics`, `/api/retry` and the web dashboard; "
        "empty disables the HTTP server.",
    )
    http_token: SecretStr | None = Field(
        default=None,
        description="Bearer token every HTTP endpoint except `/healthz`, `/metrics` and the dashboard's page shell "
        "requires, on any address; unset, retry over HTTP is refused and a bind off loopback serves only "
        "`/healthz` and `/metrics`.",
        examples=["change-me"],
    )
    http_token_file: ReadableFile | None = Field(
        default=None,
        description="File holding the `http_token` (preferred to the key itself); a relative path is read from "
        "`$CREDENTIALS_DIRECTORY`, systemd's `LoadCredential=`.",
        examples=["http_token"],
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="`text` for human-readable lines, `json` for one JSON object per line (log shippers, jq).",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info",
        description="Lowest level logged: `debug`, `info`, `warning` or `error`; under journald every line carries "
        "its syslog priority, so `journalctl -p warning` shows warnings and errors only.",
    )
    backup: BackupSettings = Field(default_factory=BackupSettings, description="Scheduled database backups.")
    watch_mode: Literal["auto", "events", "poll"] = Field(
        default="auto",
        description="`events` (inotify), `poll` (stat polling, for NFS/CIFS/FUSE where other hosts' writes raise "
        "no events) or `auto` (poll when the watch root is on a network or FUSE filesystem).",
    )
    poll_interval_seconds: float = Field(
        default=2.0,
        gt=0,
        description="Seconds between two polls in `poll` mode: a new file is noticed within this time, then settles.",
    )
    after_sync: Literal["keep", "archive", "delete"] = Field(
        default="keep",
        description="What happens to a dropped file once every target holds a verified copy and its request is "
        "answered (and `after_sync_min_age_seconds` have passed): `keep` (left in place), `archive` (moved under "
        "`<state_dir>/archive/<device>/`) or `delete`.",
    )
    after_sync_min_age_seconds: float = Field(
        default=86400.0,
        ge=0,
        description="Seconds a file stays in place after its last target synced it, before `after_sync` acts on it.",
    )
    notify: NotifySettings = Field(default_factory=NotifySettings, description="Event notifications.")
    request_retention_days: int = Field(
        default=90,
        ge=1,
        description="Days finished requests stay in the live tables before they move, with their metadata, "
        "responses and ledger rows, to the archive tables.",
    )

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
        if value:
            parse_bind(value)  # a BindError is a ValueError: reported under the key's name
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
