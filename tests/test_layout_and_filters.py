"""Which paths the daemon takes (README.md, Folder layout) and per-target globs (docs/configuration.md)."""

from __future__ import annotations

import pytest

from cloudwatcher.daemon.upload.filters import target_takes
from cloudwatcher.layout import classify


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("truck-001/requests/a.json", "request"),
        ("truck-001/requests/sub/dir/a.json", "request"),
        ("truck-001/requests/photo.jpg", "attachment"),
        ("truck-001/responses/a.json", "response"),
        ("T.x_y-z/requests/a b é.txt", "attachment"),
    ],
)
def test_files_in_device_folders_are_taken(path: str, kind: str) -> None:
    dropped = classify(path)
    assert dropped is not None and dropped.kind == kind and dropped.device_id == path.split("/")[0]


@pytest.mark.parametrize(
    "path",
    [
        "truck-001/requests/.hidden.json",
        "truck-001/requests/~lock.json",
        "truck-001/requests/a.json.tmp",
        "truck-001/requests/a.part",
        "truck-001/requests/a.partial",
        "truck-001/requests/.a.swp",
        "truck-001/requests/a.swp",
        "truck-001/requests/a.crdownload",
        "truck-001/requests/.inprogress/a.json",
        "truck-001/other/a.json",
        "truck-001/a.json",
        "-bad/requests/a.json",
        "bad device/requests/a.json",
        f"{'x' * 51}/requests/a.json",
    ],
)
def test_in_progress_names_and_foreign_paths_are_ignored(path: str) -> None:
    assert classify(path) is None


@pytest.mark.parametrize(
    ("path", "include", "exclude", "taken"),
    [
        ("d/requests/a.jpg", [], [], True),
        ("d/requests/a.jpg", ["**/*.jpg"], [], True),
        ("d/requests/x/y/a.jpg", ["**/*.jpg"], [], True),
        ("d/requests/a.JPG", ["**/*.jpg"], [], False),  # case-sensitive
        ("d/requests/a.json", ["**/*.jpg"], [], False),
        ("d/requests/a.jpg", ["*/requests/*.jpg"], [], True),
        ("d/requests/x/a.jpg", ["*/requests/*.jpg"], [], False),  # * stays within one folder
        ("d/requests/a.jpg", [], ["**/*.jpg"], False),
        ("d/responses/a.json", ["*/responses/**"], [], True),
        ("d/requests/a.json", ["**"], ["*/requests/*.json"], False),
    ],
)
def test_include_and_exclude_globs(path: str, include: list[str], exclude: list[str], taken: bool) -> None:
    assert target_takes(path, include, exclude) is taken
