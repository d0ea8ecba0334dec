"""Every retry decision of the daemon, decided without waiting: the RNG, the clock and the sleep
are injected, so each test states exactly which waits the policy chose."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from cloudwatcher.config.settings import RetrySettings
from cloudwatcher.daemon.health import DatabaseHealth
from cloudwatcher.daemon.retry import (
    DEADLOCK_RETRIES,
    LedgerUnavailableError,
    StoppedError,
    after_failure,
    backoff_delay,
    deadlock_retrying,
    next_attempt_at,
    quick_retrying,
    quick_retrying_blocking,
    retry_on_outage,
    webhook_delay,
    write_back_retrying,
)
from cloudwatcher.providers import DailyCapError, FileChangedError, PermanentError, TransientError

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SETTINGS = RetrySettings(initial_delay_seconds=5.0, max_delay_seconds=60.0, max_attempts=4)


class FixedRandom(random.Random):
    """An RNG whose every draw is ``value``."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


LOW, HIGH = FixedRandom(0.0), FixedRandom(1.0)


class Sleeps:
    """An injected sleep: records each wait, waits for none."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)

    def blocking(self, seconds: float) -> None:
        self.waits.append(seconds)


class Flaky:
    """Fails with the given errors in turn, then returns ``result``."""

    def __init__(self, *errors: BaseException, result: str = "done") -> None:
        self.errors = list(errors)
        self.result = result
        self.calls = 0

    async def __call__(self) -> str:
        return self.blocking()

    def blocking(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


# ---------------------------------------------------------------------------- scheduled backoff


def test_the_backoff_doubles_per_attempt_within_half_to_whole_of_the_delay_and_is_capped() -> None:
    assert [backoff_delay(SETTINGS, n, rng=HIGH) for n in (1, 2, 3, 4, 5)] == [5.0, 10.0, 20.0, 40.0, 60.0]
    assert [backoff_delay(SETTINGS, n, rng=LOW) for n in (1, 2, 3)] == [2.5, 5.0, 10.0]


def test_the_schedule_gives_up_at_max_attempts_and_honours_retry_after_as_a_floor() -> None:
    assert next_attempt_at(SETTINGS, 1, NOW, rng=HIGH) == NOW + timedelta(seconds=5)
    assert next_attempt_at(SETTINGS, 1, NOW, retry_after=120.0, rng=HIGH) == NOW + timedelta(seconds=120)
    assert next_attempt_at(SETTINGS, 1, NOW, retry_after=1.0, rng=HIGH) == NOW + timedelta(seconds=5)
    assert next_attempt_at(SETTINGS, SETTINGS.max_attempts, NOW, rng=HIGH) is None
    assert next_attempt_at(SETTINGS, 1, NOW, permanent=True) is None


def test_a_transient_failure_is_scheduled_counting_this_attempt() -> None:
    after = after_failure(SETTINGS, TransientError("busy", retry_after=30.0), 1, NOW, rng=HIGH)
    assert after.at == NOW + timedelta(seconds=30)  # attempt 2 would wait 10 s: the server's 30 s win
    assert after.spent_attempt and after.error == "busy"
    assert after_failure(SETTINGS, TransientError("busy"), SETTINGS.max_attempts - 1, NOW).at is None


def test_an_unexpected_error_is_retried_and_named() -> None:
    after = after_failure(SETTINGS, ValueError("odd"), 0, NOW, rng=LOW)
    assert after.error == "ValueError: odd"
    assert after.at == NOW + timedelta(seconds=2.5)


def test_permanent_failures_give_up_and_a_changed_file_is_not_announced() -> None:
    refused = after_failure(SETTINGS, PermanentError("refused"), 0, NOW)
    changed = after_failure(SETTINGS, FileChangedError("changed"), 0, NOW)
    assert (refused.at, refused.announce) == (None, True)
    assert (changed.at, changed.announce) == (None, False)


def test_a_daily_cap_and_an_unreachable_ledger_spend_no_attempt() -> None:
    capped = after_failure(SETTINGS, DailyCapError("cap", retry_after=7200.0), 3, NOW)
    assert (capped.at, capped.spent_attempt) == (NOW + timedelta(hours=2), False)
    unsaid = after_failure(SETTINGS, DailyCapError("cap"), 3, NOW)
    assert unsaid.at == NOW + timedelta(hours=1)
    ledger = after_failure(SETTINGS, LedgerUnavailableError("down"), 3, NOW)
    assert (ledger.at, ledger.spent_attempt) == (NOW + timedelta(seconds=5), False)


def test_the_webhook_backoff_doubles_from_its_base_and_is_capped_at_an_hour() -> None:
    assert [webhook_delay(n, 2.0, rng=HIGH) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert webhook_delay(30, 2.0, rng=HIGH) == 3600.0
    assert webhook_delay(1, 2.0, rng=LOW) == 1.0


# ---------------------------------------------------------------------------- quick retries


async def test_quick_retries_wait_at_least_the_servers_retry_after_and_stop_after_three_tries() -> None:
    sleeps = Sleeps()
    flaky = Flaky(*(TransientError("throttled", retry_after=1.5) for _ in range(3)))
    with pytest.raises(TransientError):
        async for attempt in quick_retrying(sleep=sleeps):
            with attempt:
                await flaky()
    assert flaky.calls == 3
    assert sleeps.waits == [1.5, 1.5]


async def test_quick_retries_back_off_briefly_without_a_hint_then_succeed() -> None:
    sleeps = Sleeps()
    flaky = Flaky(TransientError("reset"), TransientError("reset"))
    result = None
    async for attempt in quick_retrying(sleep=sleeps):
        with attempt:
            result = await flaky()
    assert result == "done"
    assert sleeps.waits == [0.2, 0.4]


@pytest.mark.parametrize(
    "error",
    [
        PermanentError("refused"),
        DailyCapError("cap", retry_after=1.0),
        TransientError("come back later", retry_after=30.0),  # long waits go to the schedule
    ],
)
def test_quick_retries_leave_permanent_capped_and_long_waits_to_the_schedule(error: Exception) -> None:
    sleeps = Sleeps()
    flaky = Flaky(error)
    with pytest.raises(type(error)):
        quick_retrying_blocking(sleep=sleeps.blocking)(flaky.blocking)
    assert flaky.calls == 1
    assert sleeps.waits == []


# ---------------------------------------------------------------------------- reconnect waits


async def test_an_outage_is_waited_out_with_doubling_waits_and_reported_to_health() -> None:
    health, sleeps = DatabaseHealth(), Sleeps()
    seen: list[tuple[str, float]] = []
    flaky = Flaky(*(ConnectionRefusedError("down") for _ in range(6)))
    result = await retry_on_outage(
        flaky, health, on_outage=lambda error, seconds: seen.append((str(error), seconds)), sleep=sleeps
    )
    assert result == "done"
    assert sleeps.waits == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]
    assert [seconds for _, seconds in seen] == sleeps.waits
    assert health.healthy  # succeeded at the end


async def test_an_outage_left_unfinished_is_still_reported() -> None:
    health = DatabaseHealth()
    with pytest.raises(ConnectionRefusedError):
        await retry_on_outage(
            Flaky(*(ConnectionRefusedError("down") for _ in range(9))), health, give_up_after=3.0, sleep=Sleeps()
        )
    assert not health.healthy and health.last_error == "down"


async def test_waiting_gives_up_once_the_bound_was_spent_waiting() -> None:
    sleeps = Sleeps()
    flaky = Flaky(*(OSError("down") for _ in range(10)))
    with pytest.raises(OSError):
        await retry_on_outage(flaky, None, give_up_after=3.0, sleep=sleeps)
    assert sleeps.waits == [0.5, 1.0, 2.0]  # 3.5 s waited: the next failure gives up
    assert flaky.calls == 4


async def test_other_errors_are_not_an_outage() -> None:
    health, flaky = DatabaseHealth(), Flaky(ValueError("bug"))
    with pytest.raises(ValueError):
        await retry_on_outage(flaky, health, sleep=Sleeps())
    assert flaky.calls == 1 and health.healthy


async def test_a_component_stopping_ends_the_wait_without_asking_the_database_again() -> None:
    stopping = asyncio.Event()
    flaky = Flaky(OSError("down"))

    async def stop_meanwhile(seconds: float) -> None:
        stopping.set()

    with pytest.raises(StoppedError):
        await retry_on_outage(flaky, DatabaseHealth(), stopping=stopping, sleep=stop_meanwhile)
    assert flaky.calls == 1


# ---------------------------------------------------------------------------- deadlocks, write-backs


async def test_a_deadlock_is_retried_a_few_times_with_growing_waits_then_raised() -> None:
    sleeps = Sleeps()
    flaky = Flaky(*(asyncpg.DeadlockDetectedError("deadlock detected") for _ in range(DEADLOCK_RETRIES)))
    with pytest.raises(asyncpg.DeadlockDetectedError):
        async for attempt in deadlock_retrying(sleep=sleeps):
            with attempt:
                await flaky()
    assert flaky.calls == DEADLOCK_RETRIES
    assert sleeps.waits == pytest.approx([0.05, 0.1, 0.15, 0.2])


async def test_an_unbounded_deadlock_retry_goes_on_until_the_transaction_commits() -> None:
    sleeps = Sleeps()
    flaky = Flaky(*(asyncpg.SerializationError("could not serialize") for _ in range(8)))
    async for attempt in deadlock_retrying(attempts=None, sleep=sleeps):
        with attempt:
            await flaky()
    assert flaky.calls == 9


async def test_a_write_back_waits_briefly_after_a_deadlock_and_longer_after_an_outage() -> None:
    sleeps = Sleeps()
    flaky = Flaky(OSError("down"), asyncpg.DeadlockDetectedError("deadlock"), OSError("down"), OSError("down"))
    async for attempt in write_back_retrying(attempts=10, sleep=sleeps):
        with attempt:
            await flaky()
    assert sleeps.waits == pytest.approx([0.5, 0.1, 2.0, 4.0])
    with pytest.raises(OSError):
        async for attempt in write_back_retrying(attempts=1, sleep=sleeps):
            with attempt:
                await Flaky(OSError("down"))()
