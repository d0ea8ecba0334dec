"""The settler on its own: when a file counts as finished, and what it does with files that change,
vanish or turn into something else while it waits.

The settler's clock is replaced by one the test moves by hand, so each case states exactly how much
time has passed; the files themselves are real, because the settler looks at them again with lstat.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cloudwatcher.daemon.watch import settle
from cloudwatcher.daemon.watch.scanner import Candidate
from cloudwatcher.daemon.watch.settle import Settler
from cloudwatcher.daemon.watch.skips import SkipTally

SETTLE = 5.0
#: Every file's modification time in the hand-moved clock's tests (wall-clock seconds).
MTIME = 1_700_000_000


class HandClock:
    """Stands in for the ``time`` module inside settle.py: wall and monotonic time move together."""

    def __init__(self, wall: float) -> None:
        self.wall = wall
        self.mono = 1000.0

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> HandClock:
    """The wall clock starts at the files' modification time: every file is brand new."""
    hand = HandClock(MTIME)
    monkeypatch.setattr(settle, "time", hand)
    return hand


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    (tmp_path / "dev1/requests").mkdir(parents=True)
    return tmp_path


def _candidate(path: Path) -> Candidate:
    info = path.stat()
    return Candidate(path.name, str(path), info.st_size, info.st_mtime_ns)


def drop(inbox: Path, name: str, data: bytes, mtime: float = MTIME) -> Candidate:
    """A file under dev1/requests with the given modification time, as the scanner reports it."""
    path = inbox / "dev1/requests" / name
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    info = path.stat()
    return Candidate(f"dev1/requests/{name}", str(path), info.st_size, info.st_mtime_ns)


def test_a_file_older_than_the_settle_time_is_taken_when_offered(clock: HandClock, inbox: Path) -> None:
    candidate = drop(inbox, "old.bin", b"x", mtime=MTIME - SETTLE)
    settler = Settler(SETTLE)
    assert settler.offer(candidate) is candidate
    assert len(settler) == 0 and settler.next_due_in() is None


def test_a_fresh_file_is_watched_and_taken_once_unchanged_for_the_settle_time(clock: HandClock, inbox: Path) -> None:
    candidate = drop(inbox, "fresh.bin", b"x")
    settler = Settler(SETTLE)
    assert settler.offer(candidate) is None
    assert len(settler) == 1 and settler.next_due_in() == SETTLE
    clock.advance(SETTLE - 1)
    assert settler.collect_due() == []  # not due yet: not even looked at
    assert len(settler) == 1 and settler.next_due_in() == 1
    clock.advance(1)
    assert settler.collect_due() == [candidate]
    assert len(settler) == 0 and settler.next_due_in() is None


def test_offering_an_unchanged_file_again_keeps_its_first_observation(clock: HandClock, inbox: Path) -> None:
    candidate = drop(inbox, "again.bin", b"x")
    settler = Settler(SETTLE)
    settler.offer(candidate)
    clock.advance(3)
    assert settler.offer(candidate) is None  # a second event for the same bytes
    clock.advance(SETTLE - 3)
    assert settler.collect_due() == [candidate]


def test_a_file_that_changes_while_watched_is_watched_again_from_the_change(clock: HandClock, inbox: Path) -> None:
    candidate = drop(inbox, "growing.bin", b"x")
    settler = Settler(SETTLE)
    settler.offer(candidate)
    clock.advance(SETTLE)
    grown = drop(inbox, "growing.bin", b"xx", mtime=MTIME + SETTLE)
    assert settler.collect_due() == []
    assert len(settler) == 1 and settler.next_due_in() == SETTLE
    clock.advance(SETTLE)
    (settled,) = settler.collect_due()
    assert (settled.local_path, settled.size, settled.mtime_ns) == (grown.local_path, 2, grown.mtime_ns)


def test_a_device_clock_ahead_of_ours_settles_on_our_own_observation(clock: HandClock, inbox: Path) -> None:
    candidate = drop(inbox, "ahead.bin", b"x", mtime=MTIME + 3600)  # stamped an hour in our future
    settler = Settler(SETTLE)
    assert settler.offer(candidate) is None
    assert settler.next_due_in() == SETTLE  # never longer than the settle time, whatever the stamp says
    clock.advance(SETTLE)
    assert settler.collect_due() == [candidate]


def _remove(path: str) -> None:
    os.unlink(path)


def _folder(path: str) -> None:
    os.unlink(path)
    os.mkdir(path)  # its files are offered on their own when the watcher sees them


def _link(path: str) -> None:
    os.unlink(path)
    os.symlink("/etc/hostname", path)


def _beyond_the_ledger(path: str) -> None:
    os.utime(path, ns=(2**40 * 10**9, 2**40 * 10**9))  # nanoseconds beyond a bigint


@pytest.mark.parametrize(
    ("change", "skipped"),
    [
        pytest.param(_remove, {}, id="removed: forgotten"),
        pytest.param(_folder, {}, id="replaced by a folder: forgotten"),
        pytest.param(_link, {"dev1": 1}, id="replaced by a link: skipped and counted"),
        pytest.param(_beyond_the_ledger, {"dev1": 1}, id="mtime the ledger cannot hold: skipped and counted"),
    ],
)
def test_a_file_that_stops_being_one_to_upload_while_watched_is_dropped(
    clock: HandClock, inbox: Path, fresh_tally: SkipTally, change: Callable[[str], None], skipped: dict[str, int]
) -> None:
    candidate = drop(inbox, "changing", b"x")
    settler = Settler(SETTLE)
    settler.offer(candidate)
    change(candidate.absolute_path)
    clock.advance(SETTLE)
    assert settler.collect_due() == []
    assert len(settler) == 0 and settler.next_due_in() is None
    assert fresh_tally.take_unsaved() == skipped


def test_files_come_due_in_the_order_of_their_deadlines(clock: HandClock, inbox: Path) -> None:
    settler = Settler(SETTLE)
    first = drop(inbox, "first.bin", b"1")
    settler.offer(first)
    clock.advance(2)
    second = drop(inbox, "second.bin", b"2", mtime=MTIME + 2)
    settler.offer(second)
    clock.advance(SETTLE - 2)
    assert settler.collect_due() == [first]
    assert settler.next_due_in() == 2
    clock.advance(2)
    assert settler.collect_due() == [second]


# Against the real clock: the settler and a file really being written.


def test_an_old_file_has_settled_at_once(tmp_path: Path) -> None:
    path = tmp_path / "old.bin"
    path.write_bytes(b"x")
    os.utime(path, (time.time() - 10, time.time() - 10))
    assert Settler(1.0).offer(_candidate(path)) is not None


def test_a_fresh_file_settles_only_after_it_stops_changing(tmp_path: Path) -> None:
    settler = Settler(0.3)
    path = tmp_path / "fresh.bin"
    path.write_bytes(b"x")
    assert settler.offer(_candidate(path)) is None
    time.sleep(0.15)
    path.write_bytes(b"xx")
    time.sleep(0.2)
    assert settler.collect_due() == []  # changed: watched again from now
    time.sleep(0.35)
    settled = settler.collect_due()
    assert [c.size for c in settled] == [2]
    assert len(settler) == 0
