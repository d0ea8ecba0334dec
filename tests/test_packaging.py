"""What the installed package declares, and that cloud SDKs stay optional extras.

A daemon with only local targets must neither need nor load msgraph, googleapiclient or boto3;
a target whose SDK is missing is a configuration error (exit 2) naming the extra to install.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.support.daemon_process import DaemonProcess

#: Top-level modules of each cloud SDK; none may be imported by a local-only daemon.
SDK_MODULES = ("msgraph", "azure", "googleapiclient", "google.auth", "boto3", "botocore")
PROBE_SITE = Path(__file__).with_name("sdk_probe")


def declared_dependencies() -> set[str]:
    return {Requirement(line).name.lower() for line in requires("cloudwatcher") or [] if "extra ==" not in line}


def extra_dependencies(extra: str) -> set[str]:
    found = set()
    for line in requires("cloudwatcher") or []:
        requirement = Requirement(line)
        if "extra ==" in line and requirement.marker is not None and requirement.marker.evaluate({"extra": extra}):
            found.add(requirement.name.lower())
    return found


def sdks_in(modules: list[str] | set[str]) -> set[str]:
    return {name for name in modules for sdk in SDK_MODULES if name == sdk or name.startswith(sdk + ".")}


def probe_env(monkeypatch: pytest.MonkeyPatch, *, hide: str = "", report: Path | None = None) -> None:
    """Child processes load tests/sdk_probe/sitecustomize.py (see there)."""
    monkeypatch.setenv("PYTHONPATH", str(PROBE_SITE))
    monkeypatch.setenv("CLOUDWATCHER_TEST_HIDE_MODULES", hide)
    if report is not None:
        monkeypatch.setenv("CLOUDWATCHER_TEST_MODULES_REPORT", str(report))


def test_loading_yaml_reference_data_needs_no_undeclared_package() -> None:
    assert "pyyaml" in declared_dependencies()


def test_cloud_sdks_are_extras_and_not_core_dependencies() -> None:
    assert declared_dependencies().isdisjoint({"msgraph-sdk", "azure-identity", "google-api-python-client", "boto3"})
    assert extra_dependencies("sharepoint") == {"msgraph-sdk", "azure-identity"}
    assert extra_dependencies("google-drive") == {"google-api-python-client", "google-auth"}
    assert extra_dependencies("s3") == {"boto3"}
    assert "cloudwatcher" in extra_dependencies("all")  # cloudwatcher[sharepoint,google-drive,s3]


def test_the_settings_and_the_command_line_import_no_cloud_sdk() -> None:
    imports = "cloudwatcher.cli, cloudwatcher.config, cloudwatcher.daemon.service"
    code = f"import sys, {imports}; print('\\n'.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    modules = result.stdout.split()
    assert "cloudwatcher.config.settings" in modules
    assert sdks_in(modules) == set()


@pytest.mark.slow
async def test_a_local_only_daemon_runs_and_syncs_without_importing_any_cloud_sdk(
    daemon: Callable[..., DaemonProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = tmp_path / "modules.json"
    probe_env(monkeypatch, report=report)
    d = daemon().start()
    await d.wait_started()
    d.drop("truck-1/requests/photo.jpg", b"\xff\xd8 not really a jpeg")
    await d.wait_synced(1)
    assert d.stop() == 0
    loaded = json.loads(report.read_text())
    assert "cloudwatcher.providers.local.provider" in loaded["modules"]
    assert sdks_in(loaded["modules"]) == set()


@pytest.mark.slow
async def test_a_local_only_daemon_runs_and_syncs_when_no_cloud_sdk_is_installed(
    daemon: Callable[..., DaemonProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    probe_env(monkeypatch, hide="msgraph,azure,googleapiclient,google,boto3,botocore")
    d = daemon().start()
    await d.wait_started()
    d.drop("truck-1/requests/log.txt", b"engine ok")
    await d.wait_synced(1)
    assert (d.mirror / "truck-1/requests/log.txt").read_bytes() == b"engine ok"
    assert d.stop() == 0


def sharepoint_target(tmp_path: Path) -> dict[str, str]:
    return {"provider": "sharepoint", "tenant_id": "t", "client_id": "c", "client_secret": "s", "drive_id": "d"}


def google_drive_target(tmp_path: Path) -> dict[str, str]:
    key = tmp_path / "service-account.json"
    key.write_text("{}")
    return {"provider": "google-drive", "service_account_file": str(key), "folder_id": "f"}


def s3_target(tmp_path: Path) -> dict[str, str]:
    return {"provider": "s3", "bucket": "b"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("make_target", "hidden", "extra"),
    [
        (sharepoint_target, "msgraph", "sharepoint"),
        (sharepoint_target, "azure", "sharepoint"),
        (google_drive_target, "googleapiclient", "google-drive"),
        (s3_target, "boto3", "s3"),
    ],
)
def test_a_target_whose_sdk_is_missing_exits_2_naming_the_extra_to_install(
    daemon: Callable[..., DaemonProcess],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_target: Callable[[Path], dict[str, str]],
    hidden: str,
    extra: str,
) -> None:
    probe_env(monkeypatch, hide=hidden)
    d = daemon(targets=[{"name": "cloud", **make_target(tmp_path)}])
    result = d.command("run", check=False)
    assert result.returncode == 2, result.stderr
    assert f"target 'cloud' needs the {extra} extra: pip install 'cloudwatcher[{extra}]'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_check_marks_a_target_whose_sdk_is_missing_as_failed_naming_the_extra(
    daemon: Callable[..., DaemonProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe_env(monkeypatch, hide="boto3")
    d = daemon(
        targets=[
            {"name": "local", "provider": "local", "root": str(tmp_path / "m")},
            s3_target(tmp_path) | {"name": "cloud"},
        ]
    )
    result = d.command("check", check=False)
    assert result.returncode == 1
    failed = [line for line in result.stdout.splitlines() if "✗" in line]
    assert len(failed) == 1, result.stdout
    assert "target 'cloud' needs the s3 extra: pip install 'cloudwatcher[s3]'" in failed[0]
