"""Target settings for the emulators, as an operator would write them in the TOML file.

One place builds each cloud target's keys from a running emulator, so the provider harnesses
(which validate them into pydantic models), the daemon tests (which write them into the
daemon's configuration) and the benchmarks all configure a target the same way.
"""

from __future__ import annotations

from typing import Any

from tests.support.emulators.drive import DriveEmulator
from tests.support.emulators.graph import GraphEmulator
from tests.support.emulators.s3 import REGION, moto_endpoint

#: The folder path in the Graph emulator's drive that SharePoint targets mirror into.
SHAREPOINT_ROOT = "CloudWatcher"


def sharepoint_settings(
    emulator: GraphEmulator, *, name: str = "sharepoint", root: str = SHAREPOINT_ROOT, site: bool = False, **extra: Any
) -> dict[str, Any]:
    """A SharePoint target on ``emulator``, trusting its test CA through ``ca_bundle``."""
    settings: dict[str, Any] = {
        "name": name,
        "provider": "sharepoint",
        "tenant_id": emulator.tenant_id,
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
        "root": root,
        "graph_url": emulator.graph_url,
        "authority_url": emulator.authority_url,
        "ca_bundle": str(emulator.ca_pem),
    }
    if site:
        settings["site_id"] = emulator.site_id
    else:
        settings["drive_id"] = emulator.drive_id
    return {**settings, **extra}


def google_drive_settings(emulator: DriveEmulator, *, name: str = "gdrive", **extra: Any) -> dict[str, Any]:
    """A Google Drive target on ``emulator`` with the service-account key file it generated.

    The request rate is raised from Drive's default of 10 per second so that tests and
    benchmarks measure the uploader, not the pacing; tests of pacing set their own.
    """
    return {
        "name": name,
        "provider": "google-drive",
        "service_account_file": str(emulator.key_file),
        "folder_id": emulator.root_folder_id,
        "api_endpoint": emulator.url,
        "requests_per_second": 10_000,
        **extra,
    }


def s3_settings(bucket: str, *, name: str = "s3", prefix: str = "", **extra: Any) -> dict[str, Any]:
    """An S3 target on the process's moto server (credentials come from the environment)."""
    return {
        "name": name,
        "provider": "s3",
        "bucket": bucket,
        "prefix": prefix,
        "region": REGION,
        "endpoint_url": moto_endpoint(),
        **extra,
    }
