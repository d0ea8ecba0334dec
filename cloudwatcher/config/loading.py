"""Find the configuration file, build :class:`Settings`, and turn mistakes into one-line errors."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cloudwatcher.config.settings import Settings, toml_file_in_use
from cloudwatcher.errors import ConfigError
from cloudwatcher.providers.registry import PROVIDERS

__all__ = ["ConfigError", "config_file_to_use", "describe_validation_error", "load_settings"]

SYSTEM_CONFIG = Path("/etc/cloudwatcher/cloudwatcher.toml")


def config_file_to_use(explicit: Path | None) -> Path | None:
    """``--config``, else ``$CLOUDWATCHER_CONFIG``, else the system file when it exists."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get("CLOUDWATCHER_CONFIG")
    if from_env:
        return Path(from_env)
    return SYSTEM_CONFIG if SYSTEM_CONFIG.is_file() else None


def _key_name(location: tuple[int | str, ...]) -> str:
    """``("targets", 0, "local", "root")`` → ``targets[0].root`` (the union tag is noise)."""
    parts: list[str] = []
    for index, item in enumerate(location):
        if isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item}]" if parts else f"[{item}]"
        elif item in PROVIDERS and index > 0 and isinstance(location[index - 1], int):
            continue
        else:
            parts.append(str(item))
    return ".".join(parts) or "configuration"


def describe_validation_error(error: ValidationError) -> str:
    first = error.errors()[0]
    key = _key_name(tuple(first["loc"]))
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    more = len(error.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{key}: {message}{suffix}"


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings; raise :class:`ConfigError` naming the bad key on any mistake."""
    path = config_file_to_use(config_file)
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"config: file not found: {path}")
        try:
            with path.open("rb") as handle:
                tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config: {path} is not valid TOML: {exc}") from exc
    token = toml_file_in_use.set(path)
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(f"configuration error: {describe_validation_error(exc)}") from exc
    finally:
        toml_file_in_use.reset(token)
