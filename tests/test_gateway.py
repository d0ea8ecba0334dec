"""The gateway to device files, with hostile trees: links at any depth, FIFOs, swaps between checks.

Every test runs twice: with ``openat2`` (the kernel resolves the path) and with the fallback walk
of one ``O_NOFOLLOW`` open per folder (kernels without ``openat2``).
"""

from __future__ import annotations

import os
import shutil
import string
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudwatcher import gateway
from cloudwatcher.gateway import ChangedFileError, DeviceTree, RefusedPathError

SECRET = b"the admin's secret, outside every device folder"


@pytest.fixture(params=["openat2", "fallback walk"])
def resolution(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "openat2":
        assert gateway.HAS_OPENAT2, "this kernel has openat2 (5.6+); the fallback is tested separately"
    else:
        monkeypatch.setattr(gateway.openat2, "HAS_OPENAT2", False)
    return str(request.param)


@pytest.fixture
def root(tmp_path: Path, resolution: str) -> Path:
    (tmp_path / "inbox").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/secret.txt").write_bytes(SECRET)
    return tmp_path / "inbox"


@pytest.fixture
def tree(root: Path) -> Iterator[DeviceTree]:
    opened = DeviceTree(root)
    yield opened
    opened.close()


def read(tree: DeviceTree, local_path: str, **recorded: int) -> bytes:
    fd, _ = tree.open_file(local_path, **recorded)
    try:
        return gateway.read_at_most(fd, 1 << 20)
    finally:
        os.close(fd)


def test_a_regular_file_beneath_a_device_folder_is_read(root: Path, tree: DeviceTree) -> None:
    (root / "dev1/requests/a/b").mkdir(parents=True)
    (root / "dev1/requests/a/b/c.txt").write_bytes(b"hello")
    assert read(tree, "dev1/requests/a/b/c.txt") == b"hello"


def test_a_middle_folder_swapped_for_a_link_is_refused(root: Path, tree: DeviceTree) -> None:
    # mkdir x; mkdir x/sub; mv x x.old; ln -s <outside> x
    (root / "dev1/requests/x/sub").mkdir(parents=True)
    (root / "dev1/requests/x").rename(root / "dev1/requests/x.old")
    (root / "dev1/requests/x").symlink_to(root.parent / "outside")
    with pytest.raises(RefusedPathError) as refused:
        read(tree, "dev1/requests/x/secret.txt")
    assert refused.value.reason == "symlink"


def test_a_device_folder_that_is_a_link_is_refused(root: Path, tree: DeviceTree) -> None:
    (root.parent / "outside/requests").mkdir()
    shutil.copy(root.parent / "outside/secret.txt", root.parent / "outside/requests/secret.txt")
    (root / "dev1").symlink_to(root.parent / "outside")
    with pytest.raises(RefusedPathError) as refused:
        read(tree, "dev1/requests/secret.txt")
    assert refused.value.reason == "symlink"


def test_a_file_that_is_a_link_is_refused_even_to_a_file_inside(root: Path, tree: DeviceTree) -> None:
    (root / "dev1/requests").mkdir(parents=True)
    (root / "dev1/requests/real.txt").write_bytes(b"real")
    (root / "dev1/requests/link.txt").symlink_to(root / "dev1/requests/real.txt")
    with pytest.raises(RefusedPathError) as refused:
        read(tree, "dev1/requests/link.txt")
    assert refused.value.reason == "symlink"


def test_a_link_to_dev_zero_is_refused(root: Path, tree: DeviceTree) -> None:
    (root / "dev1/requests").mkdir(parents=True)
    (root / "dev1/requests/zero.bin").symlink_to("/dev/zero")
    with pytest.raises(RefusedPathError):
        read(tree, "dev1/requests/zero.bin")


def test_a_fifo_is_refused_without_blocking(root: Path, tree: DeviceTree) -> None:
    (root / "dev1/requests").mkdir(parents=True)
    os.mkfifo(root / "dev1/requests/pipe.json")  # no writer: a blocking open would never return
    with pytest.raises(RefusedPathError) as refused:
        read(tree, "dev1/requests/pipe.json")
    assert refused.value.reason == "type"


@pytest.mark.parametrize("local_path", ["dev1/requests/../../outside/secret.txt", "dev1/./requests/a", "dev1//a", ""])
def test_paths_that_climb_or_are_not_plain_are_refused(tree: DeviceTree, local_path: str) -> None:
    with pytest.raises(RefusedPathError) as refused:
        tree.open_file(local_path)
    assert refused.value.reason == "name"


def test_a_path_not_starting_with_a_device_id_is_refused(tree: DeviceTree) -> None:
    with pytest.raises(RefusedPathError):
        tree.open_file("-not-a-device/requests/a.txt")


def test_a_file_no_longer_of_the_recorded_size_is_not_read(root: Path, tree: DeviceTree) -> None:
    (root / "dev1/requests").mkdir(parents=True)
    (root / "dev1/requests/a.txt").write_bytes(b"longer than recorded")
    with pytest.raises(ChangedFileError):
        read(tree, "dev1/requests/a.txt", size=3)


def test_a_file_that_is_gone_raises_file_not_found(root: Path, tree: DeviceTree) -> None:
    (root / "dev1/requests").mkdir(parents=True)
    with pytest.raises(FileNotFoundError):
        tree.open_file("dev1/requests/never-there.txt")


def test_a_folder_replaced_by_a_file_reads_as_gone(root: Path, tree: DeviceTree) -> None:
    (root / "dev1/requests").mkdir(parents=True)
    (root / "dev1/requests/folder").write_bytes(b"a file where a folder was")
    with pytest.raises(FileNotFoundError):
        tree.open_file("dev1/requests/folder/a.txt")


def test_a_path_beyond_the_system_limit_is_refused_or_read_but_never_crashes(
    root: Path, tree: DeviceTree, resolution: str
) -> None:
    # A device can nest folders past PATH_MAX by creating each one relative to the last.
    folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for part in ["dev1", "requests", *["d" * 200] * 30]:
        os.mkdir(part, dir_fd=folder)
        inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=folder)
        os.close(folder)
        folder = inner
    with open(os.open("a.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=folder), "wb") as handle:
        handle.write(b"deep")
    os.close(folder)
    local_path = "dev1/requests/" + "/".join(["d" * 200] * 30) + "/a.txt"
    assert len(local_path) > 4096
    if resolution == "openat2":
        with pytest.raises(RefusedPathError) as refused:
            tree.open_file(local_path)
        assert refused.value.reason == "too_long"
    else:  # one component at a time knows no total length
        assert read(tree, local_path) == b"deep"


def test_a_response_is_written_through_the_real_responses_folder(root: Path, tree: DeviceTree) -> None:
    (root / "dev1").mkdir()
    assert tree.write_response("dev1/responses/2026/a.json", b'{"ok": true}\n')
    assert (root / "dev1/responses/2026/a.json").read_bytes() == b'{"ok": true}\n'
    assert [p.name for p in (root / "dev1/responses/2026").iterdir()] == ["a.json"]  # no temp file left


def test_a_response_already_in_place_is_not_written_again(root: Path, tree: DeviceTree) -> None:
    (root / "dev1").mkdir()
    tree.write_response("dev1/responses/a.json", b"{}")
    assert not tree.write_response("dev1/responses/a.json", b"{}", unchanged=lambda existing: existing == b"{}")


def test_a_linked_responses_folder_gets_no_response(root: Path, tree: DeviceTree) -> None:
    (root / "dev1").mkdir()
    (root / "dev1/responses").symlink_to(root.parent / "outside")
    with pytest.raises(RefusedPathError) as refused:
        tree.write_response("dev1/responses/a.json", b"{}")
    assert refused.value.reason == "symlink"
    assert sorted(p.name for p in (root.parent / "outside").iterdir()) == ["secret.txt"]


def test_a_linked_folder_inside_responses_gets_no_response(root: Path, tree: DeviceTree) -> None:
    (root / "dev1/responses").mkdir(parents=True)
    (root / "dev1/responses/sub").symlink_to(root.parent / "outside")
    with pytest.raises(RefusedPathError):
        tree.write_response("dev1/responses/sub/a.json", b"{}")
    assert sorted(p.name for p in (root.parent / "outside").iterdir()) == ["secret.txt"]


@pytest.mark.parametrize("planted", ["fifo", "link to /dev/zero", "link to the secret", "folder"])
def test_something_other_than_a_regular_file_at_the_response_path_is_left_alone(
    root: Path, tree: DeviceTree, planted: str
) -> None:
    (root / "dev1/responses").mkdir(parents=True)
    target = root / "dev1/responses/a.json"
    if planted == "fifo":
        os.mkfifo(target)
    elif planted == "folder":
        target.mkdir()
    else:
        target.symlink_to("/dev/zero" if planted == "link to /dev/zero" else root.parent / "outside/secret.txt")
    with pytest.raises(RefusedPathError):
        tree.write_response("dev1/responses/a.json", b"{}", unchanged=lambda existing: False)
    assert (root.parent / "outside/secret.txt").read_bytes() == SECRET


def test_a_response_outside_responses_is_refused(root: Path, tree: DeviceTree) -> None:
    (root / "dev1/requests").mkdir(parents=True)
    with pytest.raises(RefusedPathError):
        tree.write_response("dev1/requests/a.json", b"{}")


# ---------------------------------------------------------------------- properties

# Any byte but "/" and NUL may be in a name; "." and ".." are not names a device can create.
names = st.binary(min_size=1, max_size=40).filter(lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b".."))
device_ids = st.text(string.ascii_letters + string.digits, min_size=1, max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(device=device_ids, folders=st.lists(names, min_size=0, max_size=8), name=names, data=st.binary(max_size=4096))
def test_any_file_beneath_a_device_folder_reads_back_its_own_bytes(
    resolution: str, device: str, folders: list[bytes], name: bytes, data: bytes
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = os.fsencode(scratch)
        folder = os.path.join(root, os.fsencode(device), b"requests", *folders)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, name), "wb") as handle:
            handle.write(data)
        local_path = "/".join([device, "requests", *(os.fsdecode(f) for f in folders), os.fsdecode(name)])
        tree = DeviceTree(scratch)
        try:
            assert read(tree, local_path, size=len(data)) == data
        finally:
            tree.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    folders=st.lists(names, min_size=1, max_size=8),
    swapped=st.integers(min_value=0, max_value=7),
    to_file_inside=st.booleans(),
)
def test_a_link_at_any_depth_is_refused_and_never_yields_outside_bytes(
    resolution: str, folders: list[bytes], swapped: int, to_file_inside: bool
) -> None:
    """Build the path twice, inside the device folder and outside; then swap the folder at a
    random depth for a link to its outside twin (or to a folder inside the device's own tree):
    the open is refused and the outside bytes never come back."""
    swapped %= len(folders)
    with tempfile.TemporaryDirectory() as scratch:
        root = os.path.join(os.fsencode(scratch), b"inbox")
        outside = os.path.join(os.fsencode(scratch), b"outside")
        inside = os.path.join(root, b"dev1", b"requests", *folders)
        twin = os.path.join(outside, *folders)
        for folder, content in ((inside, b"inside"), (twin, SECRET)):
            os.makedirs(folder)
            with open(os.path.join(folder, b"f.txt"), "wb") as handle:
                handle.write(content)
        link = os.path.join(root, b"dev1", b"requests", *folders[: swapped + 1])
        os.rename(link, link + b".old")  # the device's own folder moved aside
        if to_file_inside:
            os.symlink(link + b".old", link)
        else:
            os.symlink(os.path.join(outside, *folders[: swapped + 1]), link)
        local_path = "/".join(["dev1", "requests", *(os.fsdecode(f) for f in folders), "f.txt"])
        tree = DeviceTree(os.fsdecode(root))
        try:
            with pytest.raises(RefusedPathError) as refused:
                read(tree, local_path)
            assert refused.value.reason == "symlink"
        finally:
            tree.close()


def test_a_folder_that_is_a_link_is_refused_as_a_link_not_reported_gone(root: Path, tree: DeviceTree) -> None:
    (root / "dev1/requests").mkdir(parents=True)
    (root / "dev1/requests/x").symlink_to(root.parent / "outside")
    with pytest.raises(RefusedPathError) as refused:
        tree.open_folder("dev1/requests/x")
    assert refused.value.reason == "symlink"


def test_a_watch_root_removed_and_made_again_is_opened_afresh(root: Path, tree: DeviceTree) -> None:
    (root / "dev1/requests").mkdir(parents=True)
    (root / "dev1/requests/a.txt").write_bytes(b"first")
    assert read(tree, "dev1/requests/a.txt") == b"first"
    shutil.rmtree(root)
    (root / "dev1/requests").mkdir(parents=True)
    (root / "dev1/requests/a.txt").write_bytes(b"second")
    assert read(tree, "dev1/requests/a.txt") == b"second"
