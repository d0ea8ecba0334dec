"""The one retry policy of the daemon: exponential backoff with jitter, capped, bounded."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from cloudwatcher.config.settings import RetrySettings
from cloudwatcher.providers import TransientError


def backoff_delay(settings: RetrySettings, attempts: int, *, rng: random.Random | None = None) -> float:
    """Delay before the next attempt after ``attempts`` failed ones ("full jitter" halved:
    a delay in [d/2, d] keeps retries spread without ever retrying immediately)."""
    base = settings.initial_delay_seconds * (2 ** max(0, attempts - 1))
    capped = min(settings.max_delay_seconds, base)
    return capped * (0.5 + 0.5 * (rng or random).random())


def server_retry_after(error: BaseException | None) -> float:
    """Seconds the server asked us to wait (``Retry-After``) before repeating, 0 when it said nothing.

    Every wait before a repeat, quick or scheduled, is at least this long: a throttled request
    repeated sooner is throttled again.
    """
    if isinstance(error, TransientError) and error.retry_after is not None:
        return max(0.0, error.retry_after)
    return 0.0


def next_attempt_at(
    settings: RetrySettings,
    attempts: int,
    now: datetime,
    *,
    retry_after: float | None = None,
    permanent: bool = False,
) -> datetime | None:
    """When the scheduled retry job should re-queue a row; None once it has given up."""
    if permanent or attempts >= settings.max_attempts:
        return None
    delay = backoff_delay(settings, attempts)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return now + timedelta(seconds=delay)
