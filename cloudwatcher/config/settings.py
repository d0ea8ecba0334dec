"""Settings models (documented in docs/configuration.md).

Precedence is flags > environment (``CLOUDWATCHER_`` prefix, ``__`` between nested keys,
JSON for lists) > TOML file > defaults; :mod:`cloudwatcher.config.loading` wires the sources.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
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

DEVICE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$")
TARGET_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
_SIZE_SUFFIXES = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3}

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


def credential_path(path: Path) -> Path:
    """Resolve a relative ``*_file`` against ``$CREDENTIALS_DIRECTORY`` (systemd LoadCredential=)."""
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds and not path.is_absolute():
        return Path(creds) / path
    return path


def _readable_file(path: Path) -> Path:
    """Refuse a ``*_file`` key whose file cannot be read, at load time.

    Checking here turns a missing secret into the one-line configuration error (exit 2)
    that names the key, instead of a traceback when the daemon first needs the secret.
    The file is opened (not just stat'ed) so that a permission problem is caught too.
    """
    resolved = credential_path(path)
    try:
        with resolved.open("rb"):
            pass
    except IsADirectoryError:
        raise ValueError(f"not a file: {resolved}") from None
    except FileNotFoundError:
        raise ValueError(f"file not found: {resolved}") from None
    except OSError as exc:
        raise ValueError(f"cannot read {resolved}: {exc.strerror}") from None
    return path


# A path to a file the daemon reads a secret or key from; it must exist and be readable.
ReadableFile = Annotated[Path, AfterValidator(_readable_file)]


def parse_byte_rate(value: Any) -> int | None:
    """``"10M"`` → 10·1024² bytes per second; suffixes are powers of 1024."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        number, unit = float(value), ""
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGkmg]?)(?:i?B)?\s*", str(value))
        if not match:
            raise ValueError("expected a byte rate such as 500K, 10M or 1G")
        number, unit = float(match.group(1)), match.group(2).upper()
    rate = int(number * _SIZE_SUFFIXES[unit])
    if rate <= 0:
        raise ValueError("must be positive")
    return rate


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TargetBase(_Strict):
    """Keys every target takes."""

    name: str = Field(pattern=TARGET_NAME_PATTERN)
    requests_per_second: float | None = Field(default=None, gt=0)
    bandwidth_limit: int | None = None
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)

    @field_validator("bandwidth_limit", mode="before")
    @classmethod
    def _byte_rate(cls, value: Any) -> int | None:
        return parse_byte_rate(value)


class LocalTarget(TargetBase):
    provider: Literal["local"]
    root: Path


class SharePointTarget(TargetBase):
    provider: Literal["sharepoint"]
    tenant_id: str
    client_id: str
    client_secret: SecretStr | None = None
    client_secret_file: ReadableFile | None = None
    #: A PEM holding the app registration's certificate and its private key (signs a client assertion).
    client_certificate_file: ReadableFile | None = None
    drive_id: str | None = None
    site_id: str | None = None
    root: str = ""
    graph_url: str = "https://graph.microsoft.com/v1.0"
    authority_url: str = "https://login.microsoftonline.com"
    ca_bundle: Path | None = None

    @model_validator(mode="after")
    def _needs_secret_and_drive(self) -> SharePointTarget:
        given = [
            key
            for key in ("client_secret", "client_secret_file", "client_certificate_file")
            if getattr(self, key) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "exactly one of client_secret, client_secret_file or client_certificate_file is required"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if not (self.drive_id or self.site_id):
            raise ValueError("drive_id or site_id is required")
        return self

    def secret(self) -> str:
        """The client secret, read from its file when given as one (not for a certificate sign-in)."""
        if self.client_secret is not None:
            return self.client_secret.get_secret_value()
        assert self.client_secret_file is not None
        return credential_path(self.client_secret_file).read_text().strip()


class GoogleDriveTarget(TargetBase):
    """A Drive folder. Service accounts own no storage, so one signs in to upload into a shared drive,
    or impersonates a user (domain-wide delegation); else a user's OAuth consent (``authorize``)."""

    provider: Literal["google-drive"]
    service_account_file: ReadableFile | None = None
    #: A user's email: the service account acts as that user through domain-wide delegation.
    impersonate: str | None = None
    #: The OAuth client ("Desktop app") JSON downloaded from the Google Cloud console.
    oauth_client_file: ReadableFile | None = None
    #: Where ``cloudwatcher authorize`` stores the user's refresh token; need not exist yet.
    token_file: Path | None = None
    folder_id: str
    shared_drive_id: str | None = None
    api_endpoint: str = "https://www.googleapis.com"
    ca_bundle: Path | None = None
    # Drive's documented per-user quota makes an unthrottled uploader spin on 403s.
    requests_per_second: float | None = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _one_way_to_sign_in(self) -> GoogleDriveTarget:
        service_account = self.service_account_file is not None
        oauth = self.oauth_client_file is not None or self.token_file is not None
        if service_account and oauth:
            raise ValueError(
                "service_account_file cannot be combined with oauth_client_file/token_file: "
                "give exactly one way to sign in"
            )
        if not service_account and not oauth:
            raise ValueError("one way to sign in is required: service_account_file, or oauth_client_file + token_file")
        if oauth and (self.oauth_client_file is None or self.token_file is None):
            missing = "oauth_client_file" if self.oauth_client_file is None else "token_file"
            raise ValueError(f"{missing} is required with a user's OAuth sign-in")
        if self.impersonate is not None and not service_account:
            raise ValueError("impersonate needs service_account_file (domain-wide delegation)")
        return self


class S3Target(TargetBase):
    provider: Literal["s3"]
    bucket: str
    prefix: str = ""
    region: str | None = None
    endpoint_url: str | None = None
    ca_bundle: Path | None = None


TargetConfig = Annotated[
    LocalTarget | SharePointTarget | GoogleDriveTarget | S3Target,
    Field(discriminator="provider"),
]


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
    def target_list(self) -> list[LocalTarget | SharePointTarget | GoogleDriveTarget | S3Target]:
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
