"""The stall clock's arithmetic, on a clock the test moves by hand (no sleeping, no timing)."""

from __future__ import annotations

import pytest

from cloudwatcher.daemon.ops.stall import STALL_SECONDS, ProgressClock, StallDetector, stall_seconds


class HandClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_lane_stuck_shows_although_the_other_lanes_keep_moving() -> None:
    clock = HandClock()
    waiting = {"truck-1": 1, "truck-2": 3}
    progress = ProgressClock("request ingestion", lambda: sum(waiting.values()), now=clock)
    progress.mark("truck-1")  # truck-1 gets a request and never moves again
    for _ in range(10):
        clock.now += 30
        progress.mark("truck-2")  # truck-2 keeps being answered
    stall = StallDetector([progress], bound_seconds=120).stalled()
    assert stall is not None and stall.stage == "request ingestion" and stall.seconds == 300


def test_a_lane_that_ran_dry_is_never_stuck_and_idleness_without_work_is_no_stall() -> None:
    clock = HandClock()
    waiting = {"truck-1": 0}
    progress = ProgressClock("request ingestion", lambda: sum(waiting.values()), now=clock)
    progress.mark("truck-1")
    progress.done("truck-1")
    clock.now += 3600
    assert StallDetector([progress], bound_seconds=120).stalled() is None

    waiting["truck-1"] = 1  # work arrives after an hour of quiet: the clock starts now
    progress.mark("truck-1")
    clock.now += 119
    assert StallDetector([progress], bound_seconds=120).stalled() is None
    clock.now += 2
    assert StallDetector([progress], bound_seconds=120).stalled() is not None


def test_the_bound_comes_from_the_environment_only_when_it_is_a_positive_number(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for text, expected in (
        ("3", 3.0),
        ("0.5", 0.5),
        ("0", STALL_SECONDS),
        ("-1", STALL_SECONDS),
        ("soon", STALL_SECONDS),
    ):
        monkeypatch.setenv("CLOUDWATCHER_STALL_SECONDS", text)
        assert stall_seconds() == expected, text
    monkeypatch.delenv("CLOUDWATCHER_STALL_SECONDS")
    assert stall_seconds() == STALL_SECONDS == 120
