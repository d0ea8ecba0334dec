"""Build the provider for a target's configuration; the daemon's only way to get one."""

from __future__ import annotations

import importlib

from cloudwatcher.config import TargetConfig
from cloudwatcher.providers.base import Provider

# provider key → "module:class"; imported lazily so a missing SDK only hurts its own target.
PROVIDERS: dict[str, str] = {
    "local": "cloudwatcher.providers.local:LocalProvider",
    "sharepoint": "cloudwatcher.providers.sharepoint:SharePointProvider",
    "google-drive": "cloudwatcher.providers.google_drive:GoogleDriveProvider",
    "s3": "cloudwatcher.providers.s3:S3Provider",
}


def build_provider(target: TargetConfig, *, concurrency: int = 4) -> Provider:
    """Instantiate the provider named by ``target.provider``."""
    module_name, class_name = PROVIDERS[target.provider].split(":")
    provider_class = getattr(importlib.import_module(module_name), class_name)
    provider: Provider = provider_class(target, concurrency=concurrency)
    return provider
