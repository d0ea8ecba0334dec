"""Is the pipeline stuck? Each stage that must keep moving (the recorder, the request
ingestion) owns a :class:`ProgressClock`; :class:`StallDetector` reads them for ``/healthz``
and the systemd watchdog.

A stage is stalled when work has been waiting for it and it has made no progress for
:func:`stall_seconds` while the database answers. A database outage is not a stall: the
stages wait for the database on purpose, the daemon rides the outage out and exits 1 once it
lasts too long (see :mod:`cloudwatcher.daemon.health`), so a stage excuses the time it spends
waiting for the database by calling :meth:`ProgressClock.mark`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)

__all__ = ["STALL_SECONDS", "ProgressClock", "Stall", "StallDetector", "stall_seconds"]

#: No progress for this long, with work waiting and the database answering, is a stall.
STALL_SECONDS = 120.0
#: Tests shorten the bound through this variable (a hidden knob, not a documented setting).
STALL_SECONDS_ENV = "CLOUDWATCHER_STALL_SECONDS"


def stall_seconds() -> float:
    """:data:`STALL_SECONDS`, or a positive number from ``$CLOUDWATCHER_STALL_SECONDS``."""
    text = os.environ.get(STALL_SECONDS_ENV, "").strip()
    if text:
        try:
            value = float(text)
        except ValueError:
            value = 0.0
        if value > 0:
            return value
        log.warning("ignoring %s=%r: not a positive number of seconds", STALL_SECONDS_ENV, text)
    return STALL_SECONDS


class ProgressClock:
    """When one stage last moved, and whether work waits for it.

    ``waiting`` is the stage's own view of its backlog (a callable, so the clock never holds a
    copy that could disagree). The stage calls :meth:`mark` whenever it finishes an item, when
    work arrives while it was idle (an hour of idleness is no stall), and while it waits for a
    database outage to end.

    A stage made of independent lanes (the ingestion has one per device) marks each lane by
    its key and calls :meth:`done` when a lane runs dry: the stage is as stuck as its most stuck
    lane, so one device wedged behind a lock shows although the other devices keep flowing.
    """

    def __init__(self, name: str, waiting: Callable[[], int], now: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.waiting = waiting
        self._now = now
        self._marks: dict[str, float] = {}  # lane -> when it last moved (or got work while idle)

    def mark(self, lane: str = "") -> None:
        self._marks[lane] = self._now()

    def done(self, lane: str) -> None:
        """``lane`` has nothing left to do: it cannot be stuck."""
        self._marks.pop(lane, None)

    def idle_seconds(self) -> float:
        """Seconds since the most stuck lane last moved, while work waits; 0 when nothing waits."""
        if self.waiting() <= 0 or not self._marks:
            return 0.0
        return self._now() - min(self._marks.values())


@dataclass(frozen=True)
class Stall:
    stage: str
    seconds: float
    waiting: int

    def __str__(self) -> str:
        return f"the {self.stage} has made no progress for {self.seconds:.0f} s with {self.waiting} item(s) waiting"


class StallDetector:
    """The first stalled stage among ``clocks``, if any (the caller has checked the database)."""

    def __init__(self, clocks: Iterable[ProgressClock], bound_seconds: float | None = None) -> None:
        self.clocks = list(clocks)
        self.bound_seconds = stall_seconds() if bound_seconds is None else bound_seconds

    def stalled(self) -> Stall | None:
        for clock in self.clocks:
            idle = clock.idle_seconds()
            if idle > self.bound_seconds:
                return Stall(clock.name, idle, clock.waiting())
        return None
