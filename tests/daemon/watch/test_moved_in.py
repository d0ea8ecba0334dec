"""Files renamed into place are taken without the settle wait only when no writer holds them;
everything else (a file still open for writing by any name, a FIFO, a link, a file that changed)
still goes through the settle rule or is skipped, as before."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cloudwatcher.daemon.watch.moved_in import no_writer_holds
from cloudwatcher.daemon.watch.scanner import Candidate, WarnOnce, stat_candidate
from cloudwatcher.daemon.watch.settle import Settler
from cloudwatcher.daemon.watch.watcher import FolderWatcher

# Longer than any test runs: a file these tests see delivered came by the rename path, never by time.
NEVER = 3600.0


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "inbox/dev1/requests").mkdir(parents=True)
    return tmp_path / "inbox"


def candidate_of(root: Path, local_path: str) -> Candidate:
    found = stat_candidate(root, root / local_path, WarnOnce())
    assert found is not None
    return found


def test_a_closed_file_has_no_writer(root: Path) -> None:
    (root / "dev1/requests/done.txt").write_bytes(b"done")
    assert no_writer_holds(candidate_of(root, "dev1/requests/done.txt"))


def test_a_file_open_for_writing_by_another_name_has_a_writer(root: Path) -> None:
    temp = root / "dev1/requests/.busy.txt.part"
    with temp.open("wb") as writer:
        writer.write(b"half")
        writer.flush()
        os.link(temp, root / "dev1/requests/busy.txt")  # the same file under its final name too
        assert not no_writer_holds(candidate_of(root, "dev1/requests/busy.txt"))
    assert no_writer_holds(candidate_of(root, "dev1/requests/busy.txt"))  # closed now


def test_a_file_renamed_in_while_open_for_writing_has_a_writer(root: Path) -> None:
    temp = root / "dev1/requests/.open.txt.part"
    with temp.open("wb") as writer:
        writer.write(b"first half")
        writer.flush()
        os.rename(temp, root / "dev1/requests/open.txt")
        assert not no_writer_holds(candidate_of(root, "dev1/requests/open.txt"))


def test_a_file_changed_since_it_was_seen_or_swapped_is_not_taken(root: Path, tmp_path: Path) -> None:
    path = root / "dev1/requests/changing.txt"
    path.write_bytes(b"one")
    seen = candidate_of(root, "dev1/requests/changing.txt")
    path.write_bytes(b"one and two")
    assert not no_writer_holds(seen)
    (tmp_path / "secret.txt").write_bytes(b"one and two")
    path.unlink()
    path.symlink_to(tmp_path / "secret.txt")  # swapped for a link after it was seen
    assert not no_writer_holds(seen)


def test_a_fifo_that_replaced_a_file_is_not_taken_and_never_blocks(root: Path) -> None:
    path = root / "dev1/requests/pipe.txt"
    path.write_bytes(b"")
    seen = candidate_of(root, "dev1/requests/pipe.txt")
    path.unlink()
    os.mkfifo(path)
    assert not no_writer_holds(seen)


def test_the_settler_takes_a_handed_over_version_once_and_a_new_version_again(root: Path) -> None:
    path = root / "dev1/requests/fresh.txt"
    path.write_bytes(b"v1")
    settler = Settler(NEVER)
    first = candidate_of(root, "dev1/requests/fresh.txt")
    assert settler.offer(first) is None  # fresh: watched
    assert len(settler) == 1
    settler.handed(first)
    assert len(settler) == 0  # no longer watched
    assert settler.offer(first) is None  # the watchfiles event of the same rename
    assert len(settler) == 0  # ... starts no wait
    path.write_bytes(b"v2, longer")
    assert settler.offer(candidate_of(root, "dev1/requests/fresh.txt")) is None
    assert len(settler) == 1  # a new version is watched as ever


@pytest.fixture
async def watching(root: Path) -> AsyncIterator[tuple[FolderWatcher, asyncio.Queue[Candidate]]]:
    """A watcher on ``root`` whose settle time never passes during a test, once it is watching."""
    delivered: asyncio.Queue[Candidate] = asyncio.Queue()
    watcher = FolderWatcher(
        watch_root=root, settle_seconds=NEVER, poll=False, poll_interval_seconds=1, sink=delivered.put_nowait
    )
    stopping = asyncio.Event()
    task = asyncio.create_task(watcher.watch(stopping))
    try:
        await _wait_until_watching(root, delivered)
        yield watcher, delivered
    finally:
        stopping.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _wait_until_watching(root: Path, delivered: asyncio.Queue[Candidate]) -> None:
    """Rename probe files in until one is delivered (only the rename path can deliver them)."""
    for attempt in range(600):
        rename_in(root / "dev1/requests", f"probe-{attempt}.txt", b"probe")
        try:
            await asyncio.wait_for(delivered.get(), timeout=0.1)
            return
        except TimeoutError:
            continue
    raise AssertionError("the watcher never took a renamed probe")


async def next_delivered(queue: asyncio.Queue[Candidate], name: str) -> list[str]:
    """Names delivered up to and including ``name`` (probes left out); fails after a minute."""
    names: list[str] = []
    while name not in names:
        candidate = await asyncio.wait_for(queue.get(), timeout=60)
        if not Path(candidate.local_path).name.startswith("probe-"):
            names.append(Path(candidate.local_path).name)
    return names


def rename_in(folder: Path, name: str, data: bytes) -> Path:
    temp = folder / f".{name}.part"
    temp.write_bytes(data)
    final = folder / name
    os.rename(temp, final)
    return final


async def test_files_renamed_in_are_taken_without_waiting_but_not_one_still_open_for_writing(
    root: Path, watching: tuple[FolderWatcher, asyncio.Queue[Candidate]]
) -> None:
    watcher, delivered = watching
    folder = root / "dev1/requests"
    temp = folder / ".open.txt.part"
    with temp.open("wb") as writer:
        writer.write(b"first half")
        writer.flush()
        os.rename(temp, folder / "open.txt")
        os.mkfifo(folder / ".pipe.txt.part")
        os.rename(folder / ".pipe.txt.part", folder / "pipe.txt")
        (folder / ".link.txt.part").symlink_to(folder / "open.txt")
        os.rename(folder / ".link.txt.part", folder / "link.txt")
        rename_in(folder, "done.txt", b"complete")
        # Events come in order: once done.txt is delivered, the three before it were looked at.
        assert await next_delivered(delivered, "done.txt") == ["done.txt"]
        assert "dev1/requests/open.txt" in watcher.settler._watched  # left to the settle rule
    rename_in(folder, "later.txt", b"complete too")
    assert await next_delivered(delivered, "later.txt") == ["later.txt"]


async def test_a_file_renamed_in_starts_no_settle_wait_when_watchfiles_reports_it_too(
    root: Path, watching: tuple[FolderWatcher, asyncio.Queue[Candidate]]
) -> None:
    watcher, delivered = watching
    folder = root / "dev1/requests"
    for index in range(50):
        rename_in(folder, f"f{index:02}.txt", b"x" * index)
    names = await next_delivered(delivered, "f49.txt")
    assert sorted(names) == [f"f{index:02}.txt" for index in range(50)]
    # A file written in place with an old mtime reaches the sink only through watchfiles' events,
    # which come in order: once it is delivered, watchfiles has reported the renamed files too.
    marker = folder / "marker.txt"
    marker.write_bytes(b"m")
    os.utime(marker, (0, 0))
    assert await next_delivered(delivered, "marker.txt") == ["marker.txt"]
    assert len(watcher.settler) == 0  # none of the renamed files waits for the settle time
