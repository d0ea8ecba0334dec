"""The example configuration (systemd/cloudwatcher.toml.example), written from the settings models.

Every key appears with its description as a comment and its default; what the models cannot
know is kept here: the values a systemd install sets (the unit's state folder), a sample
target of each cloud kind with plausible identifiers, and which sign-in keys are alternatives
to the sample's (shown as ``# key = value``, so that enabling every ``#key = value`` line still
gives a configuration that loads; a test does exactly that). A kind with no sample here is
written from its model alone: its required keys are named, the others shown with their defaults.
"""

from __future__ import annotations

import textwrap
from dataclasses import replace
from typing import Any

from cloudwatcher.config.catalog import REQUIRED, Catalog, Computed, Key, toml_literal

HEADER = """\
# /etc/cloudwatcher/cloudwatcher.toml: CloudWatcher configuration.
#
# Generated from the settings models by `make docs`: change a description or a default there,
# not here. Every key is shown with its default. Precedence: command-line flag > environment
# (CLOUDWATCHER_ prefix, "__" between nested keys, JSON for lists, e.g.
# CLOUDWATCHER_RETRY__MAX_ATTEMPTS=20) > this file > defaults.
# Every cloudwatcher command reads this file when it exists, so `cloudwatcher status` run by
# an admin sees the same database as the service.
#
# Lines starting with "#" followed directly by a key (no space) are ready-to-use examples:
# remove the "#" to enable them. "# key = value" lines are alternatives to the key above them.
"""

# The values a systemd install sets, with why (keys dotted like "backup.dir").
INSTALL_VALUES: dict[str, tuple[Any, str]] = {
    "state_dir": (
        "/var/lib/cloudwatcher",
        "Under systemd the default is $STATE_DIRECTORY (/var/lib/cloudwatcher); set it explicitly "
        "so that admin commands run outside the service agree with it.",
    ),
    "watch_root": (
        "/srv/cloudwatcher/inbox",
        "Outside /var/lib/cloudwatcher it must also be listed in the unit's ReadWritePaths=. Under the "
        "shipped unit the state folder is private (0700), so devices need a watch root outside it; "
        "cloudwatcher-add-device makes each device's folder in it.",
    ),
    "backup.dir": ("/var/lib/cloudwatcher/backups", ""),
}

# The target the shipped file enables: the default one, at the systemd state folder.
SHIPPED_TARGETS: list[dict[str, Any]] = [{"name": "local", "provider": "local", "root": "/var/lib/cloudwatcher/mirror"}]

# Ready-to-use examples of the keys every target takes, shown commented out in the shipped block.
TARGET_EXAMPLES: dict[str, Any] = {
    "requests_per_second": 50,
    "bandwidth_limit": "20M",
    "include": ["**/requests/**"],
    "exclude": ["**/*.tmp"],
}

# A commented-out sample of each cloud kind, with a note on what it needs.
SAMPLE_TARGETS: dict[str, tuple[dict[str, Any], str]] = {
    "sharepoint": (
        {
            "name": "sharepoint",
            "provider": "sharepoint",
            "tenant_id": "00000000-0000-0000-0000-000000000000",
            "client_id": "00000000-0000-0000-0000-000000000000",
            "client_secret_file": "sharepoint_client_secret",
            "drive_id": "b!xxxxxxxx",
            "site_id": "contoso.sharepoint.com,00000000-0000-0000-0000-000000000000,"
            "00000000-0000-0000-0000-000000000000",
            "root": "CloudWatcher",
            "ca_bundle": "/etc/ssl/certs/ca-certificates.crt",
        },
        "SharePoint / OneDrive for Business through Microsoft Graph (app registration with "
        "Sites.ReadWrite.All or Sites.Selected). Give drive_id, or site_id for its default library; "
        "keep secrets out of this file where you can (client_secret_file, client_certificate_file).",
    ),
    "google-drive": (
        {
            "name": "drive",
            "provider": "google-drive",
            "service_account_file": "/etc/cloudwatcher/credentials/drive_service_account.json",
            "folder_id": "1AbCdEfGhIjKlMnOpQrStUvWxYz",
            "shared_drive_id": "0ABCDEFGHIJKLMNOPQ",
            "ca_bundle": "/etc/ssl/certs/ca-certificates.crt",
        },
        "Google Drive with a service account uploading into a shared drive (add the account as a member "
        "of the shared drive; a service account has no storage quota of its own). Exactly one way to "
        "sign in per target: the service account, the same with impersonate (domain-wide delegation), or a "
        "user's OAuth consent (oauth_client_file + token_file, after `cloudwatcher authorize google-drive "
        "drive` as the daemon's user; give token_file as an absolute path).",
    ),
    "s3": (
        {
            "name": "s3",
            "provider": "s3",
            "bucket": "field-devices",
            "prefix": "cloudwatcher/",
            "region": "eu-west-1",
            "endpoint_url": "https://s3.eu-west-1.amazonaws.com",
            "ca_bundle": "/etc/ssl/certs/ca-certificates.crt",
        },
        "Amazon S3 or a compatible store; credentials from the standard AWS chain (environment, "
        "~/.aws of the service user, instance metadata).",
    ),
}

# Keys shown as "# key = value": another way to give what the sample already gives.
ALTERNATIVES: dict[str, dict[str, Any]] = {
    "sharepoint": {"client_secret": "...", "client_certificate_file": "sharepoint_certificate.pem"},
    "google-drive": {
        "impersonate": "uploads@example.com",
        "oauth_client_file": "/etc/cloudwatcher/credentials/drive_oauth_client.json",
        "token_file": "/var/lib/cloudwatcher/drive_token.json",
    },
}

WIDTH = 100


def comment(text: str) -> list[str]:
    """``text`` as ``#`` lines wrapped to the file's width; nothing for an empty text."""
    if not text:
        return []
    return textwrap.wrap(
        text, WIDTH, initial_indent="# ", subsequent_indent="# ", break_long_words=False, break_on_hyphens=False
    )


def key_lines(
    key: Key,
    values: dict[str, Any],
    alternatives: dict[str, Any],
    enabled: bool,
    examples: dict[str, Any] | None = None,
) -> list[str]:
    """A key's description and its line: given value, alternative, example, default, or what it needs."""
    examples = examples or {}
    prefix = "" if enabled else "#"
    lines = comment(key.description)
    if key.name in values:
        lines.append(f"{prefix}{key.name} = {toml_literal(values[key.name])}")
    elif key.name in alternatives:
        lines.append(f"# {key.name} = {toml_literal(alternatives[key.name])}")
    elif key.name in examples or key.examples:
        example = examples[key.name] if key.name in examples else key.examples[0]
        lines.append(f"#{key.name} = {toml_literal(example)}")
    elif key.default is REQUIRED:
        lines.append(f"# {key.name}: required")
    elif isinstance(key.default, Computed):
        lines.append(f"# {key.name}: by default {key.default.text}")
    elif key.default is None:
        lines.append(f"# {key.name}: unset by default")
    else:
        lines.append(f"{prefix}{key.name} = {toml_literal(key.default)}")
    return lines


def _section(keys: tuple[Key, ...], skip: str | None) -> list[str]:
    lines: list[str] = []
    for key in keys:
        if key.name == skip:
            continue
        value, note = INSTALL_VALUES.get(key.path, (None, ""))
        values = {key.name: value} if key.path in INSTALL_VALUES else {}
        lines += ["", *key_lines(key, values, {}, enabled=True), *comment(note)]
    return lines


def _target(catalog: Catalog, tag: str, values: dict[str, Any], note: str, enabled: bool) -> list[str]:
    kind = next(kind for kind in catalog.kinds if kind.tag == tag)
    values = {"name": tag, **({catalog.tag_key: tag} if catalog.tag_key else {}), **values}
    header = f"[[{catalog.list_key}]]"
    lines = ["", *comment(note or kind.doc), header if enabled else f"#{header}"]
    own = {key.name for key in kind.keys}
    common = [key for key in catalog.common if key.name not in own]
    alternatives = ALTERNATIVES.get(tag, {})
    for key in common:  # name and kind; the keys every target takes are described once, in the shipped block
        if key.name in values:
            lines += key_lines(key if enabled else replace(key, description=""), values, {}, enabled)
    for key in kind.keys:
        lines += key_lines(key, values, alternatives, enabled)
    if enabled:
        for key in common:
            if key.name not in values:
                lines += key_lines(key, values, {}, enabled, TARGET_EXAMPLES)
    return lines


def example_toml(catalog: Catalog) -> str:
    """The whole example file: header, top-level keys, sections, then the shipped and sample targets."""
    lines = HEADER.splitlines()
    top, *sections = catalog.sections
    lines += _section(top.keys, catalog.list_key)
    for section in sections:
        lines += ["", f"[{section.name}]", *comment(section.description), *_section(section.keys, None)]
    if catalog.list_key is not None:
        list_key = next(key for key in top.keys if key.name == catalog.list_key)
        lines += ["", "# " + "-" * 78 + f" {catalog.list_key}", *comment(list_key.description)]
        tags = {kind.tag for kind in catalog.kinds}
        shipped = [target for target in SHIPPED_TARGETS if target.get(catalog.tag_key or "") in tags]
        for target in shipped:
            lines += _target(catalog, target[catalog.tag_key or ""], target, "", enabled=True)
        shipped_tags = {target[catalog.tag_key or ""] for target in shipped}
        for kind in catalog.kinds:
            if kind.tag not in shipped_tags:
                sample, note = SAMPLE_TARGETS.get(kind.tag, ({}, ""))
                lines += _target(catalog, kind.tag, sample, note, enabled=False)
    return "\n".join(lines) + "\n"
