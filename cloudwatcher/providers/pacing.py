"""Pacing of a target's traffic: ``requests_per_second`` and ``bandwidth_limit`` (docs/configuration.md).

One token bucket serves every provider, whatever its SDK. boto3 and google-api-python-client
block in the target's worker threads; msgraph-sdk (httpx) awaits on the daemon's event loop.
So the bucket does its bookkeeping under a :class:`threading.Lock` that is never held while
waiting (cheap enough to take from the event loop too), and hands the wait to the caller:
:meth:`TokenBucket.acquire` sleeps the calling thread, :meth:`TokenBucket.acquire_async`
awaits. A thread and a coroutine may share one bucket.

A caller takes its whole amount at once, possibly going into debt, and sleeps that debt off
outside the lock; the next caller sees the debt and waits behind it. Waits therefore queue up
in arrival order, the average rate holds, and an amount larger than the burst (a whole
upload chunk against a small ``bandwidth_limit``) still goes through instead of starving.

:meth:`TokenBucket.close` wakes every sleeping thread at once and lets later callers through
unpaced: a closing provider must not keep the daemon's shutdown waiting on its throttle.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["TargetPacing", "TokenBucket"]


class _PacedTarget(Protocol):
    """The two keys every target's configuration carries (``TargetBase``)."""

    @property
    def requests_per_second(self) -> float | None: ...

    @property
    def bandwidth_limit(self) -> int | None: ...


class TokenBucket:
    """A token bucket of ``rate`` tokens per second holding at most ``burst``; ``rate=None`` is unpaced.

    ``clock`` is injectable so that the arithmetic can be tested without real time passing.
    """

    def __init__(self, rate: float | None, burst: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be positive or None, not {rate}")
        if burst <= 0:
            raise ValueError(f"burst must be positive, not {burst}")
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._tokens = self.burst
        self._stamp = clock()
        self._lock = threading.Lock()
        self._closed = threading.Event()

    @classmethod
    def per_second(cls, rate: float | None, *, clock: Callable[[], float] = time.monotonic) -> TokenBucket:
        """A bucket for ``requests_per_second``: a burst of ``max(1, rate)`` requests."""
        return cls(rate, burst=max(1.0, rate or 1.0), clock=clock)

    @classmethod
    def bytes_per_second(cls, rate: int | None, *, clock: Callable[[], float] = time.monotonic) -> TokenBucket:
        """A bucket for ``bandwidth_limit``: a burst of one second's worth of bytes."""
        return cls(float(rate) if rate else None, burst=float(rate or 1), clock=clock)

    @property
    def limited(self) -> bool:
        """Whether taking tokens can ever make a caller wait."""
        return self.rate is not None and not self._closed.is_set()

    def reserve(self, amount: float = 1.0) -> float:
        """Take ``amount`` tokens now and return how many seconds the caller must wait for them."""
        if self.rate is None or self._closed.is_set():
            return 0.0
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= amount
            return -self._tokens / self.rate if self._tokens < 0 else 0.0

    def acquire(self, amount: float = 1.0) -> None:
        """Block the calling (worker) thread until ``amount`` tokens are paid for, or until close."""
        wait = self.reserve(amount)
        if wait > 0:
            self._closed.wait(wait)

    async def acquire_async(self, amount: float = 1.0) -> None:
        """Await until ``amount`` tokens are paid for (for SDKs that run on the event loop)."""
        wait = self.reserve(amount)
        if wait > 0:
            await asyncio.sleep(wait)

    def close(self) -> None:
        """Wake every thread waiting in :meth:`acquire`; from now on nothing is paced."""
        self._closed.set()


@dataclass(frozen=True)
class TargetPacing:
    """The two buckets of one target, shared by all of its workers."""

    #: One token per HTTP request to the provider's API or upload URLs (never the token endpoint).
    requests: TokenBucket
    #: One token per byte of file content sent.
    bandwidth: TokenBucket

    @classmethod
    def for_target(cls, config: _PacedTarget) -> TargetPacing:
        return cls(
            requests=TokenBucket.per_second(config.requests_per_second),
            bandwidth=TokenBucket.bytes_per_second(config.bandwidth_limit),
        )

    def close(self) -> None:
        """Release every throttled thread (the provider is closing)."""
        self.requests.close()
        self.bandwidth.close()
