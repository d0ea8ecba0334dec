"""The one list of providers: each one's tag, configuration model, class and optional extra.

As in rclone's backend registry, everything else is derived from this list: the settings'
``targets`` union (:data:`TargetConfig`), the tags the configuration errors leave out, and the
provider a target's configuration builds (:func:`build_provider`, the daemon's only way to get
one). A provider's tag is written once, as the ``Literal`` of its configuration model.

Cloud SDKs are optional extras (``cloudwatcher[sharepoint]``, ``[google-drive]``, ``[s3]``).
The configuration models import no SDK; a provider's class, and with it its SDK, is imported
only when a target of that kind is built, so a local-only daemon never loads (or needs)
msgraph, googleapiclient or boto3.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Union, get_args

from pydantic import Field

from cloudwatcher.errors import ConfigError
from cloudwatcher.providers.base import Provider
from cloudwatcher.providers.google_drive.config import GoogleDriveTarget
from cloudwatcher.providers.local.config import LocalTarget
from cloudwatcher.providers.s3.config import S3Target
from cloudwatcher.providers.sharepoint.config import SharePointTarget
from cloudwatcher.providers.target import TargetBase


@dataclass(frozen=True)
class ProviderEntry:
    """A provider: its configuration model, where its class lives, which extra brings its SDK."""

    #: The target keys of this provider (its ``provider`` field's Literal is the tag).
    config: type[TargetBase]
    #: "module:class" of the provider.
    location: str
    #: The pip extra that installs its SDK, or None when it needs none.
    extra: str | None = None
    #: Top-level modules of that SDK: a ModuleNotFoundError for one of them means the extra is missing.
    sdk_modules: frozenset[str] = frozenset()

    @property
    def tag(self) -> str:
        """The value of ``provider`` in a target's configuration."""
        tag: str = get_args(self.config.model_fields["provider"].annotation)[0]
        return tag


_ENTRIES = (
    ProviderEntry(LocalTarget, "cloudwatcher.providers.local.provider:LocalProvider"),
    ProviderEntry(
        SharePointTarget,
        "cloudwatcher.providers.sharepoint.provider:SharePointProvider",
        "sharepoint",
        frozenset({"msgraph", "msgraph_core", "kiota_abstractions", "kiota_http", "azure", "msal", "httpx"}),
    ),
    ProviderEntry(
        GoogleDriveTarget,
        "cloudwatcher.providers.google_drive.provider:GoogleDriveProvider",
        "google-drive",
        frozenset({"googleapiclient", "google", "google_auth_httplib2", "httplib2"}),
    ),
    ProviderEntry(
        S3Target,
        "cloudwatcher.providers.s3.provider:S3Provider",
        "s3",
        frozenset({"boto3", "botocore", "s3transfer"}),
    ),
)

PROVIDERS: dict[str, ProviderEntry] = {entry.tag: entry for entry in _ENTRIES}

if TYPE_CHECKING:
    # Code reads a target through the keys every target has, and narrows with isinstance.
    TargetConfig = TargetBase
else:
    #: One target's configuration: the model its ``provider`` tag picks.
    TargetConfig = Annotated[Union[tuple(entry.config for entry in _ENTRIES)], Field(discriminator="provider")]  # noqa: UP007


def missing_extra_message(target_name: str, extra: str) -> str:
    """The configuration error for a target whose SDK is not installed: names the extra and the fix."""
    return f"target {target_name!r} needs the {extra} extra: pip install 'cloudwatcher[{extra}]'"


def provider_class(target: TargetBase) -> Callable[..., Provider]:
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


def build_provider(target: TargetBase, *, concurrency: int = 4) -> Provider:
    """Instantiate the provider named by ``target.provider``."""
    provider: Provider = provider_class(target)(target, concurrency=concurrency)
    return provider
