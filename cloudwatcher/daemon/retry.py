"""Every retry decision of the daemon, in one place, so that one policy can be read and tested whole.

Five kinds of repeat exist, each with its own reason:

* **Scheduled backoff** (:func:`next_attempt_at`, :func:`after_failure`): a failed upload is
  written back ``failed`` with the time the retry job re-queues it (exponential, jittered,
  capped, bounded by ``retry.max_attempts``), never sooner than the server's ``Retry-After``.
* **Quick retries** (:func:`quick_retrying`, :func:`quick_retrying_blocking`): a short transient
  failure is repeated within the attempt (tenacity), because a round trip through the schedule
  costs seconds and a ledger write; long waits go to the schedule instead.
* **Reconnect waits** (:func:`retry_on_outage`): every component that talks to the database
  waits out an outage the same way, reporting it to :class:`~cloudwatcher.daemon.health.DatabaseHealth`
  (whose bound makes the daemon exit, for systemd to restart it).
* **Deadlock retries** (:func:`deadlock_retrying`): PostgreSQL aborts one of two transactions
  that wait on each other and asks for a retry; a few quick ones settle it.
* **Webhook backoff** (:func:`webhook_delay`): a receiver that is down is asked again later.

Waits use tenacity's strategies; the clock, the sleep and the random source can be injected so
that the tests of this module decide every wait without waiting.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import asyncpg
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    stop_never,
    wait_exponential,
    wait_incrementing,
)
from tenacity.stop import stop_base

from cloudwatcher.config.settings import RetrySettings
from cloudwatcher.daemon.health import CONNECTION_ERRORS, DatabaseHealth
from cloudwatcher.providers import DailyCapError, FileChangedError, PermanentError, TransientError

log = logging.getLogger(__name__)

T = TypeVar("T")

# ---------------------------------------------------------------------------- scheduled backoff


def jittered_backoff(initial: float, cap: float, attempts: int, rng: random.Random | None = None) -> float:
    """Doubling from ``initial`` per failed attempt, capped, then "full jitter" halved: a delay
    in [d/2, d] keeps retries spread without ever retrying immediately."""
    delay = min(cap, initial * (2 ** max(0, attempts - 1)))
    return delay * (0.5 + 0.5 * (rng or random).random())


def backoff_delay(settings: RetrySettings, attempts: int, *, rng: random.Random | None = None) -> float:
    """Delay before the next attempt after ``attempts`` failed ones."""
    return jittered_backoff(settings.initial_delay_seconds, settings.max_delay_seconds, attempts, rng)


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
    rng: random.Random | None = None,
) -> datetime | None:
    """When the scheduled retry job should re-queue a row; None once it has given up."""
    if permanent or attempts >= settings.max_attempts:
        return None
    delay = backoff_delay(settings, attempts, rng=rng)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return now + timedelta(seconds=delay)


class LedgerUnavailableError(TransientError):
    """The database could not be asked before the upload (the remote name); nothing was sent."""


LEDGER_UNAVAILABLE_SECONDS = 5.0  # not the upload's fault: tried again soon, spending no attempt
DAILY_CAP_SECONDS = 3600.0  # a daily cap that did not say until when


@dataclass(frozen=True)
class NextAttempt:
    """What a failed upload's row becomes: the message, when it is tried again (None: given up),
    whether the failure counts against ``max_attempts``, and whether giving up is announced."""

    error: str
    at: datetime | None
    spent_attempt: bool = True
    announce: bool = True


def after_failure(
    settings: RetrySettings, error: BaseException, attempts: int, now: datetime, *, rng: random.Random | None = None
) -> NextAttempt:
    """The next attempt of a row that has failed ``attempts`` times before this failure."""
    message = str(error) or type(error).__name__
    if isinstance(error, LedgerUnavailableError):
        return NextAttempt(message, now + timedelta(seconds=LEDGER_UNAVAILABLE_SECONDS), spent_attempt=False)
    if isinstance(error, DailyCapError):
        parked = now.timestamp() + (error.retry_after or DAILY_CAP_SECONDS)
        return NextAttempt(message, datetime.fromtimestamp(parked, now.tzinfo), spent_attempt=False)
    if isinstance(error, PermanentError):
        # A file that changed is not a give-up worth announcing: its new content has a row.
        return NextAttempt(message, None, announce=not isinstance(error, FileChangedError))
    retry_after = error.retry_after if isinstance(error, TransientError) else None
    if not isinstance(error, TransientError):
        message = f"{type(error).__name__}: {message}"
    return NextAttempt(message, next_attempt_at(settings, attempts + 1, now, retry_after=retry_after, rng=rng))


def not_durable_retry_at(settings: RetrySettings, now: datetime) -> datetime:
    """Uploads the provider could not make durable are tried again after the first backoff step."""
    return now + timedelta(seconds=settings.initial_delay_seconds)


# ---------------------------------------------------------------------------- quick retries

QUICK_RETRY_MAX_WAIT = 2.0  # in-attempt retries only for short waits; longer ones go to the schedule
QUICK_RETRY_ATTEMPTS = 3
_QUICK_BACKOFF = wait_exponential(multiplier=0.2, max=QUICK_RETRY_MAX_WAIT)


def worth_a_quick_retry(error: BaseException) -> bool:
    """A transient failure whose server asks for at most a short wait (and no daily cap)."""
    return (
        isinstance(error, TransientError)
        and not isinstance(error, DailyCapError)
        and (error.retry_after or 0.0) <= QUICK_RETRY_MAX_WAIT
    )


def quick_retry_wait(retry_state: RetryCallState) -> float:
    """The short backoff, but never less than the server's ``Retry-After``.

    A throttled request repeated sooner is throttled again (Graph counts it against the
    client), so the hint is a floor, as in the scheduled retries (:func:`next_attempt_at`).
    """
    error = retry_state.outcome.exception() if retry_state.outcome is not None else None
    return max(_QUICK_BACKOFF(retry_state), server_retry_after(error))


#: tenacity's policy for in-attempt retries (async and blocking alike; only the sleep differs).
_QUICK_POLICY: dict[str, Any] = {
    "stop": stop_after_attempt(QUICK_RETRY_ATTEMPTS),
    "wait": quick_retry_wait,
    "retry": retry_if_exception(worth_a_quick_retry),
    "reraise": True,
}


def quick_retrying(*, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> AsyncRetrying:
    """The in-attempt retries of one async upload."""
    return AsyncRetrying(sleep=sleep, **_QUICK_POLICY)


def quick_retrying_blocking(*, sleep: Callable[[float], None] = time.sleep) -> Retrying:
    """The same policy for uploads in a worker thread. The blocking path makes one plain try
    first (tenacity's set-up per call showed in profiles) and hands a transient failure to this
    policy, so it may try once more than the async path."""
    return Retrying(sleep=sleep, **_QUICK_POLICY)


# ---------------------------------------------------------------------------- reconnect waits

#: 0.5 s, doubling, at most 10 s between tries while the database is unreachable.
RECONNECT_WAIT = wait_exponential(multiplier=0.5, max=10.0)
_RECONNECT_POLICY: dict[str, Any] = {
    "retry": retry_if_exception_type(CONNECTION_ERRORS),
    "wait": RECONNECT_WAIT,
    "reraise": True,
}


class StoppedError(Exception):
    """Waiting for the database ended because the component waiting is stopping."""


async def wait_for_event(event: asyncio.Event, seconds: float) -> None:
    """Return when ``event`` is set or ``seconds`` pass. Not ``asyncio.wait_for``: on Python
    3.11 that can swallow a cancellation arriving as the event is set, and a loop cancelled
    that way never ends."""
    waiter = asyncio.create_task(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=seconds)
    finally:
        waiter.cancel()


async def retry_on_outage(
    action: Callable[[], Awaitable[T]],
    health: DatabaseHealth | None,
    *,
    on_outage: Callable[[BaseException, float], None] | None = None,
    give_up_after: float | None = None,
    stopping: asyncio.Event | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> T:
    """``action()``, tried again while the database is unreachable (:data:`CONNECTION_ERRORS`).

    Each failure is reported to ``health`` (whose bound ends the daemon) and to ``on_outage``
    (with the seconds about to be waited); success is reported to ``health`` too. Other errors
    propagate at once: catch :data:`~cloudwatcher.daemon.health.DATA_ERRORS` inside ``action``
    where a bad row must not look like an outage. ``give_up_after``: raise the connection error
    once this many seconds were spent waiting. ``stopping``: waits end when it is set, and the
    next try raises :class:`StoppedError` instead of asking the database.
    """
    stop: stop_base = stop_never
    if give_up_after is not None:
        bound = give_up_after
        stop = _stop_when(lambda state: state.idle_for >= bound)
    if sleep is None:
        sleep = asyncio.sleep if stopping is None else (lambda seconds: wait_for_event(stopping, seconds))

    def failed(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        if error is not None and health is not None:
            health.failed(error)

    def waiting(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        if error is not None and on_outage is not None:
            on_outage(error, state.upcoming_sleep)

    async def attempt() -> T:
        if stopping is not None and stopping.is_set():
            raise StoppedError
        return await action()

    retrying = AsyncRetrying(**_RECONNECT_POLICY, stop=stop, after=failed, before_sleep=waiting, sleep=sleep)
    result: T = await retrying(attempt)
    if health is not None:
        health.succeeded()
    return result


class _stop_when(stop_base):
    def __init__(self, predicate: Callable[[RetryCallState], bool]) -> None:
        self.predicate = predicate

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.predicate(retry_state)


# ---------------------------------------------------------------------------- deadlock retries

#: The conflicts PostgreSQL resolves by aborting one transaction and asking for a retry.
DEADLOCK_ERRORS: tuple[type[BaseException], ...] = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
DEADLOCK_RETRIES = 5
#: 50 ms more after each conflict: the other transaction usually commits within milliseconds.
DEADLOCK_WAIT = wait_incrementing(start=0.05, increment=0.05, max=1.0)


def deadlock_retrying(
    *,
    attempts: int | None = DEADLOCK_RETRIES,
    errors: tuple[type[BaseException], ...] = DEADLOCK_ERRORS,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncRetrying:
    """Tries of one transaction that may be chosen as a deadlock's victim (``attempts`` None:
    until it commits); the last conflict is raised."""
    return AsyncRetrying(
        retry=retry_if_exception_type(errors),
        wait=DEADLOCK_WAIT,
        stop=stop_never if attempts is None else stop_after_attempt(attempts),
        reraise=True,
        sleep=sleep,
    )


#: What a write-back of upload results is tried again after: an outage or a deadlock.
WRITE_BACK_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, asyncpg.TransactionRollbackError)
#: Writing upload results back on shutdown: the last chance, so it tries for a while.
FINAL_WRITE_BACK_ATTEMPTS = 100
_WRITE_BACK_OUTAGE_WAIT = wait_exponential(multiplier=0.5, max=5.0)


def write_back_wait(retry_state: RetryCallState) -> float:
    """Between tries of a write-back: a deadlock clears in milliseconds, an outage takes longer."""
    error = retry_state.outcome.exception() if retry_state.outcome is not None else None
    if isinstance(error, asyncpg.TransactionRollbackError):
        return float(DEADLOCK_WAIT(retry_state))
    return float(_WRITE_BACK_OUTAGE_WAIT(retry_state))


def write_back_retrying(*, attempts: int, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> AsyncRetrying:
    """Tries of one write-back of upload results (outage or deadlock); the last error is raised."""
    return AsyncRetrying(
        retry=retry_if_exception_type(WRITE_BACK_ERRORS),
        wait=write_back_wait,
        stop=stop_after_attempt(attempts),
        reraise=True,
        sleep=sleep,
    )


# ---------------------------------------------------------------------------- webhook backoff

WEBHOOK_MAX_DELAY_SECONDS = 3600.0


def webhook_delay(attempts: int, base_seconds: float, *, rng: random.Random | None = None) -> float:
    """Seconds before the next delivery after ``attempts`` failed ones: doubling, capped, jittered."""
    return jittered_backoff(base_seconds, WEBHOOK_MAX_DELAY_SECONDS, attempts, rng)
