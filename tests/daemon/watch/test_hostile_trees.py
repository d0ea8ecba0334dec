"""The scanner, settler and recorder's hashing facing what a device can put in its folder:
each bad entry is reported once and skipped, and every other file is still found."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudwatcher.daemon.ledger.recorder import hash_file
from cloudwatcher.daemon.ops import metrics
from cloudwatcher.daemon.watch.scanner import MAX_LOCAL_PATH, Candidate, TreeScanner, WarnOnce, stat_candidate
from cloudwatcher.daemon.watch.settle import Settler
from cloudwatcher.daemon.watch.skips import SkipTally
from cloudwatcher.gateway import is_valid_utf8
from cloudwatcher.layout import is_in_progress_name
from tests.support.deep_tree import make_chain, remove_chain


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "inbox/dev1/requests").mkdir(parents=True)
    (tmp_path / "inbox/dev1/requests/good.txt").write_bytes(b"good")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/secret.txt").write_bytes(b"secret")
    return tmp_path / "inbox"


@pytest.fixture(autouse=True)
def fresh_tally(monkeypatch: pytest.MonkeyPatch) -> SkipTally:
    """Each test counts its own skips (the daemon's tally lives as long as the process)."""
    tally = SkipTally()
    for module in ("watch.scanner", "watch.settle", "ledger.recorder"):
        monkeypatch.setattr(f"cloudwatcher.daemon.{module}.SKIPS", tally)
    return tally


def scan(root: Path) -> dict[str, Candidate]:
    return {c.local_path: c for c in TreeScanner(root, WarnOnce()).scan()}


def skipped(reason: str) -> float:
    return metrics.SKIPPED_FILES.labels(reason)._value.get()


def test_folders_nested_far_deeper_than_the_recursion_limit_end_the_walk_there_and_nothing_else(
    root: Path, fresh_tally: SkipTally
) -> None:
    before = skipped("too_long")
    make_chain(root / "dev1/requests", "d", 1100, "deepest.txt", b"deep")  # a recursive walk overflowed
    shallow = make_chain(root / "dev1/requests", "s", 100, "shallow.txt", b"shallow")
    try:
        found = scan(root)
        assert sorted(found) == sorted(["dev1/requests/good.txt", "dev1/requests/" + shallow])
        assert all(len(path) <= MAX_LOCAL_PATH for path in found)
        assert fresh_tally.take_unsaved() == {"dev1": 1}  # the folder where the path grew too long
        assert skipped("too_long") == before + 1
    finally:
        remove_chain(root / "dev1/requests", "d")
        remove_chain(root / "dev1/requests", "s")


def test_watch_events_for_every_level_of_a_too_deep_chain_are_one_skip_the_walk_agrees_on(
    root: Path, fresh_tally: SkipTally
) -> None:
    chain = make_chain(root / "dev1/requests", "n", 600, "deep.txt", b"deep")  # 1,200 characters deep
    try:
        parts = f"dev1/requests/{chain}".split("/")
        # One event per folder as a device makes the chain one level at a time, then the file's.
        for depth in range(3, len(parts) + 1):
            stat_candidate(root, root.joinpath(*parts[:depth]), WarnOnce())
        assert fresh_tally.take_unsaved() == {"dev1": 1}
        scan(root)  # the reconcile walk reports the same folder: no second count
        # Nor does a walk started at a folder already past the limit (a moved-in folder's event).
        for depth in (520, 560, 599):
            list(TreeScanner(root, WarnOnce()).scan(root.joinpath(*parts[: 2 + depth])))
        assert fresh_tally.take_unsaved() == {}
    finally:
        remove_chain(root / "dev1/requests", "n")


def test_a_name_that_is_not_utf8_is_skipped_and_counted_and_the_rest_is_found(
    root: Path, fresh_tally: SkipTally, caplog: pytest.LogCaptureFixture
) -> None:
    before = skipped("name")
    with open(os.path.join(os.fsencode(root), b"dev1/requests/bad-\xff\xfe.txt"), "wb") as handle:
        handle.write(b"x")
    os.mkdir(os.path.join(os.fsencode(root), b"dev1/requests/folder-\xc3"))
    found = scan(root)
    assert list(found) == ["dev1/requests/good.txt"]
    assert all(path.encode("utf-8") for path in found)  # nothing that could reach the database as DataError
    assert fresh_tally.take_unsaved() == {"dev1": 2}
    assert skipped("name") == before + 2
    assert "bad-\\xff\\xfe.txt" in caplog.text  # the name shown escaped


def test_fifos_sockets_and_links_are_skipped_and_counted(root: Path, fresh_tally: SkipTally) -> None:
    os.mkfifo(root / "dev1/requests/pipe.json")
    (root / "dev1/requests/zero.bin").symlink_to("/dev/zero")
    (root / "dev1/requests/away").symlink_to(root.parent / "outside")
    found = scan(root)
    assert list(found) == ["dev1/requests/good.txt"]
    assert fresh_tally.take_unsaved() == {"dev1": 3}


def test_a_skipped_file_found_again_by_the_next_scan_is_counted_once(root: Path, fresh_tally: SkipTally) -> None:
    os.mkfifo(root / "dev1/requests/pipe.json")
    scan(root)
    scan(root)
    assert fresh_tally.take_unsaved() == {"dev1": 1}


def test_a_linked_requests_folder_is_never_walked(root: Path) -> None:
    (root / "dev2").mkdir()
    (root / "dev2/requests").symlink_to(root.parent / "outside")
    assert list(scan(root)) == ["dev1/requests/good.txt"]


def test_a_folder_swapped_for_a_link_after_the_event_is_not_walked(root: Path) -> None:
    (root / "dev1/requests/x/sub").mkdir(parents=True)
    (root / "dev1/requests/x/sub/inside.txt").write_bytes(b"inside")
    (root / "dev1/requests/x").rename(root / "dev1/requests/x.old")
    (root / "dev1/requests/x").symlink_to(root.parent / "outside")
    # The watcher's event named the folder x: scanning it must not follow the link.
    found = list(TreeScanner(root, WarnOnce()).scan(root / "dev1/requests/x"))
    assert found == []


def test_hashing_refuses_a_file_whose_folder_became_a_link_after_it_was_seen(
    root: Path, fresh_tally: SkipTally
) -> None:
    (root / "dev1/requests/x").mkdir()
    (root / "dev1/requests/x/secret.txt").write_bytes(b"secret")  # same size and name as the outside one
    candidate = stat_candidate(root, root / "dev1/requests/x/secret.txt", WarnOnce())
    assert candidate is not None
    (root / "dev1/requests/x").rename(root / "dev1/requests/x.old")
    (root / "dev1/requests/x").symlink_to(root.parent / "outside")
    os.utime(root.parent / "outside/secret.txt", ns=(candidate.mtime_ns, candidate.mtime_ns))
    assert hash_file(candidate, keep=True) is None
    assert fresh_tally.take_unsaved() == {"dev1": 1}


def test_hashing_a_fifo_that_replaced_a_file_never_blocks(root: Path) -> None:
    candidate = stat_candidate(root, root / "dev1/requests/good.txt", WarnOnce())
    assert candidate is not None
    os.unlink(root / "dev1/requests/good.txt")
    os.mkfifo(root / "dev1/requests/good.txt")
    assert hash_file(candidate) is None


def test_settling_survives_a_folder_replaced_by_a_file(root: Path) -> None:
    (root / "dev1/requests/folder").mkdir()
    (root / "dev1/requests/folder/fresh.txt").write_bytes(b"fresh")
    settler = Settler(settle_seconds=0.05)
    candidate = stat_candidate(root, root / "dev1/requests/folder/fresh.txt", WarnOnce())
    assert candidate is not None
    assert settler.offer(candidate) is None  # fresh: watched
    (root / "dev1/requests/folder/fresh.txt").unlink()
    (root / "dev1/requests/folder").rmdir()
    (root / "dev1/requests/folder").write_bytes(b"now a file")
    time.sleep(0.1)
    assert settler.collect_due() == []
    assert len(settler) == 0


def test_settling_survives_a_file_replaced_by_a_fifo(root: Path, fresh_tally: SkipTally) -> None:
    (root / "dev1/requests/fresh.txt").write_bytes(b"fresh")
    settler = Settler(settle_seconds=0.05)
    candidate = stat_candidate(root, root / "dev1/requests/fresh.txt", WarnOnce())
    assert candidate is not None
    settler.offer(candidate)
    (root / "dev1/requests/fresh.txt").unlink()
    os.mkfifo(root / "dev1/requests/fresh.txt")
    time.sleep(0.1)
    assert settler.collect_due() == []
    assert fresh_tally.take_unsaved() == {"dev1": 1}


def test_an_mtime_the_ledger_cannot_hold_is_skipped_and_counted(root: Path, fresh_tally: SkipTally) -> None:
    path = root / "dev1/requests/year-36812.txt"
    path.write_bytes(b"odd")
    os.utime(path, ns=(2**40 * 10**9, 2**40 * 10**9))  # nanoseconds beyond a bigint
    assert stat_candidate(root, path, WarnOnce()) is None
    assert "dev1/requests/year-36812.txt" not in scan(root)
    assert fresh_tally.take_unsaved() == {"dev1": 1}


@pytest.mark.parametrize("mtime_s", [-86400 * 365 * 100, 0, 7_258_118_400])
def test_far_future_and_pre_1970_mtimes_settle_without_raising(root: Path, mtime_s: int) -> None:
    path = root / "dev1/requests/odd-clock.txt"
    path.write_bytes(b"odd")
    os.utime(path, ns=(mtime_s * 10**9, mtime_s * 10**9))
    candidate = stat_candidate(root, path, WarnOnce())
    assert candidate is not None
    settler = Settler(settle_seconds=0.05)
    settled = settler.offer(candidate)
    if settled is None:
        time.sleep(0.1)
        settled_list = settler.collect_due()
        time.sleep(0.1)
        settled_list += settler.collect_due()
        assert [c.local_path for c in settled_list] == ["dev1/requests/odd-clock.txt"]
    assert hash_file(candidate) is not None


entry_names = st.binary(min_size=1, max_size=30).filter(
    lambda b: b"/" not in b and b"\0" not in b and not b.startswith((b".", b"~"))
)
entry_kinds = st.sampled_from(["file", "folder", "fifo", "link out", "link in"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(st.tuples(st.lists(entry_names, max_size=3), entry_names, entry_kinds), max_size=12))
def test_a_random_hostile_tree_yields_exactly_its_regular_utf8_files(
    fresh_tally: SkipTally, entries: list[tuple[list[bytes], bytes, str]]
) -> None:
    """Whatever mix of names and kinds a device leaves, the walk never raises, finds every regular
    file whose path is valid UTF-8 (and not in progress), and nothing outside the device folder."""
    with tempfile.TemporaryDirectory() as scratch:
        root = os.path.join(os.fsencode(scratch), b"inbox")
        outside = os.path.join(os.fsencode(scratch), b"outside")
        os.makedirs(outside)
        with open(os.path.join(outside, b"secret.txt"), "wb") as handle:
            handle.write(b"secret")
        expected: set[str] = set()
        for folders, name, kind in entries:
            folder = os.path.join(root, b"dev1", b"requests", *folders)
            try:
                os.makedirs(folder, exist_ok=True)
                path = os.path.join(folder, name)
                if os.path.lexists(path):
                    continue
                if kind == "file":
                    with open(path, "wb") as handle:
                        handle.write(name)
                elif kind == "folder":
                    os.mkdir(path)
                elif kind == "fifo":
                    os.mkfifo(path)
                else:
                    os.symlink(outside if kind == "link out" else folder, path)
            except (FileExistsError, NotADirectoryError):
                continue  # a name already taken by another kind of entry
            relative = b"/".join([b"dev1", b"requests", *folders, name])
            if kind == "file":
                expected.add(os.fsdecode(relative))
        found = set(scan(Path(os.fsdecode(root))))
        wanted = {
            path
            for path in expected
            if is_valid_utf8(path)
            and not any(is_in_progress_name(part) for part in path.split("/")[2:])
            and os.path.isfile(os.path.join(root, os.fsencode(path)))
            and not any(
                os.path.islink(os.path.join(root, *os.fsencode(path).split(b"/")[: i + 1]))
                for i in range(len(path.split("/")))
            )
        }
        assert found == wanted
        assert all("secret" not in path for path in found)
