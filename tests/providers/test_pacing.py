"""The one token bucket behind every provider's ``requests_per_second`` and ``bandwidth_limit``.

The arithmetic is checked on a fake clock (exact, instant); the waiting itself, for threads and
coroutines sharing one bucket, on the real clock with generous margins. The per-provider tests
prove that each provider takes its tokens at the right places.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from cloudwatcher.config import LocalTarget, S3Target
from cloudwatcher.providers.pacing import TargetPacing, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_unpaced_bucket_never_asks_anyone_to_wait() -> None:
    bucket = TokenBucket(None, burst=1.0)
    assert not bucket.limited
    assert [bucket.reserve(10**9) for _ in range(3)] == [0.0, 0.0, 0.0]


def test_the_burst_is_free_then_each_token_costs_one_interval() -> None:
    clock = FakeClock()
    bucket = TokenBucket(4.0, burst=4.0, clock=clock)
    assert [bucket.reserve() for _ in range(4)] == [0.0] * 4
    # Debt accumulates: callers queue behind each other, a quarter second apart.
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0.25, 0.5, 0.75])


def test_idle_time_refills_the_bucket_but_never_beyond_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, burst=2.0, clock=clock)
    bucket.reserve(2.0)
    clock.now += 0.5  # one token back
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == pytest.approx(0.5)
    clock.now += 3600  # a long pause still leaves only the burst
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0.0, 0.0, 0.5])


def test_an_amount_larger_than_the_burst_goes_through_after_its_debt() -> None:
    bucket = TokenBucket.bytes_per_second(1024, clock=FakeClock())
    # An 8 KiB chunk against 1 KiB/s: one second of burst, seven of debt.
    assert bucket.reserve(8 * 1024) == pytest.approx(7.0)


@pytest.mark.parametrize(("rate", "burst"), [(0.5, 1.0), (1.0, 1.0), (10.0, 10.0), (250.0, 250.0)])
def test_requests_per_second_bursts_at_most_max_one_rate(rate: float, burst: float) -> None:
    bucket = TokenBucket.per_second(rate)
    assert (bucket.rate, bucket.burst) == (rate, burst)


def test_target_pacing_follows_the_target_keys() -> None:
    target = S3Target.model_validate(
        {"name": "s3", "provider": "s3", "bucket": "b", "requests_per_second": 3, "bandwidth_limit": "2M"}
    )
    pacing = TargetPacing.for_target(target)
    assert (pacing.requests.rate, pacing.requests.burst) == (3.0, 3.0)
    assert (pacing.bandwidth.rate, pacing.bandwidth.burst) == (2 * 1024 * 1024, 2 * 1024 * 1024)
    unpaced = TargetPacing.for_target(LocalTarget(name="l", provider="local", root=Path("/tmp/x")))
    assert not unpaced.requests.limited and not unpaced.bandwidth.limited


def test_invalid_rates_are_refused() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0.0, burst=1.0)
    with pytest.raises(ValueError):
        TokenBucket(1.0, burst=0.0)


def test_threads_sharing_a_bucket_hold_the_rate_together() -> None:
    bucket = TokenBucket.per_second(20.0)  # a burst of 20, then 20 per second
    taken: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            bucket.acquire()
            with lock:
                taken.append(time.monotonic())

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    elapsed = time.monotonic() - started
    assert len(taken) == 40
    # 40 tokens with 20 free: the other 20 cost a second, whatever the number of threads.
    assert elapsed >= (40 - 20) / 20.0 * 0.9


async def test_coroutines_and_threads_share_one_bucket() -> None:
    bucket = TokenBucket(10.0, burst=1.0)

    def take_three() -> None:
        for _ in range(3):
            bucket.acquire()

    started = time.monotonic()
    await asyncio.gather(
        *(bucket.acquire_async() for _ in range(3)),
        asyncio.to_thread(take_three),
    )
    # Six tokens, one free: five intervals of a tenth of a second.
    assert time.monotonic() - started >= 5 / 10.0 * 0.9


async def test_a_coroutine_waiting_for_tokens_does_not_block_the_event_loop() -> None:
    bucket = TokenBucket(2.0, burst=1.0)
    bucket.reserve(2.0)  # about a second of debt
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.05)

    ticking = asyncio.create_task(ticker())
    try:
        await bucket.acquire_async()
    finally:
        ticking.cancel()
    assert ticks >= 10


def test_close_wakes_a_throttled_thread_at_once_and_stops_pacing() -> None:
    bucket = TokenBucket(1.0, burst=1.0)
    bucket.reserve(60.0)  # the next caller would wait a minute
    woke = threading.Event()

    def throttled() -> None:
        bucket.acquire()
        woke.set()

    thread = threading.Thread(target=throttled)
    thread.start()
    assert not woke.wait(0.2)  # it is really waiting
    started = time.monotonic()
    bucket.close()
    assert woke.wait(5)
    assert time.monotonic() - started < 1.0
    thread.join(5)
    assert not bucket.limited
    assert bucket.reserve(10**6) == 0.0
