"""Configuration: the pydantic-settings models are the single description of every key."""

from cloudwatcher.config.loading import load_settings
from cloudwatcher.config.settings import (
    GoogleDriveTarget,
    LocalTarget,
    S3Target,
    Settings,
    SharePointTarget,
    TargetConfig,
)
from cloudwatcher.errors import ConfigError

__all__ = [
    "ConfigError",
    "GoogleDriveTarget",
    "LocalTarget",
    "S3Target",
    "Settings",
    "SharePointTarget",
    "TargetConfig",
    "load_settings",
]
