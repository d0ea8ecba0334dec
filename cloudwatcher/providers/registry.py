"""Build the provider for a target's configuration; the daemon's only way to get one.

Cloud SDKs are optional extras (``cloudwatcher[sharepoint]``, ``[google-drive]``, ``[s3]``):
a provider's module, and with it its SDK, is imported only when a target of that kind is
built, so a local-only daemon never loads (or needs) msgraph, googleapiclient or boto3.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from cloudwatcher.config import ConfigError, TargetConfig
from cloudwatcher.providers.base import Provider


@dataclass(frozen=True)
class ProviderEntry:
    """Where a provider lives and which optional extra brings the SDK it imports."""

    #: "module:class" of the provider.
    location: str
    #: The pip extra that installs its SDK, or None when it needs none.
    extra: str | None = None
    #: Top-level modules of that SDK: a ModuleNotFoundError for one of them means the extra is missing.
    sdk_modules: frozenset[str] = frozenset()


PROVIDERS: dict[str, ProviderEntry] = {
    "local": ProviderEntry("cloudwatcher.providers.local.provider:LocalProvider"),
    "sharepoint": ProviderEntry(
        "cloudwatcher.providers.sharepoint:SharePointProvider",
        "sharepoint",
        frozenset({"msgraph", "msgraph_core", "kiota_abstractions", "kiota_http", "azure", "msal", "httpx"}),
    ),
    "google-drive": ProviderEntry(
        "cloudwatcher.providers.google_drive:GoogleDriveProvider",
        "google-drive",
        frozenset({"googleapiclient", "google", "google_auth_httplib2", "httplib2"}),
    ),
    "s3": ProviderEntry(
        "cloudwatcher.providers.s3:S3Provider",
        "s3",
        frozenset({"boto3", "botocore", "s3transfer"}),
    ),
}


def missing_extra_message(target_name: str, extra: str) -> str:
    """The configuration error for a target whose SDK is not installed: names the extra and the fix."""
    return f"target {target_name!r} needs the {extra} extra: pip install 'cloudwatcher[{extra}]'"


def provider_class(target: TargetConfig) -> Callable[..., Provider]:
    """Import the provider class of ``target``; a missing SDK is a :class:`ConfigError` naming its extra."""
    entry = PROVIDERS[target.provider]
    module_name, class_name = entry.location.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing_top_level = (exc.name or "").split(".")[0]
        if entry.extra is not None and missing_top_level in entry.sdk_modules:
            raise ConfigError(missing_extra_message(target.name, entry.extra)) from exc
        raise  # our own module is broken: a bug, not a configuration mistake
    # The protocol says nothing about constructors; each provider takes (target, *, concurrency).
    found: Callable[..., Provider] = getattr(module, class_name)
    return found


def build_provider(target: TargetConfig, *, concurrency: int = 4) -> Provider:
    """Instantiate the provider named by ``target.provider``."""
    provider: Provider = provider_class(target)(target, concurrency=concurrency)
    return provider
