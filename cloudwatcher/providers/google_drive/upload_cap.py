"""Telling Drive's daily upload cap from its per-minute rate limit when the message does not.

Both can arrive as ``403 userRateLimitExceeded``. The message usually tells them apart
(:data:`.errors.DAILY_CAP_MESSAGE`); where it does not, time does: the per-minute quota clears
within its minute, so rate-limit answers to uploads that keep coming for longer than
:data:`PERSISTENCE_SECONDS`, with no upload getting through in between, are taken for the daily
cap, and the target is parked until the cap can have reset instead of spending attempts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from cloudwatcher.providers.base import DailyCapError, ProviderError
from cloudwatcher.providers.google_drive.errors import UserRateLimitError, seconds_until_daily_reset

#: Three per-minute windows: long enough that a burst of per-minute throttling (retried with
#: backoff) has cleared, short enough that a capped target stops trying within minutes.
PERSISTENCE_SECONDS = 180.0


class UploadCapWatch:
    """Remembers since when a target's uploads have been rate limited without a success."""

    def __init__(
        self, persistence: float = PERSISTENCE_SECONDS, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.persistence = persistence
        self._clock = clock
        self._limited_since: float | None = None
        self._lock = threading.Lock()  # uploads finish in the target's worker threads

    def succeeded(self) -> None:
        """An upload got through: whatever limit there was has cleared."""
        with self._lock:
            self._limited_since = None

    def judge(self, error: ProviderError) -> ProviderError:
        """``error``, or a :class:`DailyCapError` when per-minute throttling has outlasted its window."""
        if not isinstance(error, UserRateLimitError):
            return error
        with self._lock:
            now = self._clock()
            if self._limited_since is None:
                self._limited_since = now
            limited_for = now - self._limited_since
            if limited_for < self.persistence:
                return error
            # Once the target is parked, the next throttling after the parking is judged afresh:
            # the cap has reset by then, and a per-minute limit must not park it for a day.
            self._limited_since = None
        return DailyCapError(
            f"{error} (rate limited for {limited_for:.0f} s with no upload getting through: "
            "taken for Drive's daily upload limit)",
            retry_after=seconds_until_daily_reset(),
        )
