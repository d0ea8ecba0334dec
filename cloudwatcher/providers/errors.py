"""The one shape of a provider's answer to a failed request: status, Retry-After, quota, permanent.

Every provider keeps its own table of wire quirks (Graph's error codes, Drive's reasons, S3's
codes), which decide what an answer *means*; :func:`to_provider_error` turns that meaning into
the daemon's retry classes the same way for all of them, so that, for example, a 503's
``Retry-After`` hint reaches the retry schedule whichever provider received it.
"""

from __future__ import annotations

from cloudwatcher.providers.base import (
    PermanentError,
    ProviderError,
    QuotaExceededError,
    TransientError,
    parse_retry_after,
)

#: Statuses worth another attempt on every provider: a timeout, throttling, the server's errors.
_RETRYABLE_STATUSES = frozenset({408, 429})


def retryable_status(status: int) -> bool:
    """Whether an HTTP status may succeed later (408, 429, 5xx) on any provider."""
    return status in _RETRYABLE_STATUSES or status >= 500


def to_provider_error(
    message: str,
    status: int,
    *,
    retry_after: str | float | None = None,
    quota: bool = False,
    retryable: bool | None = None,
    transient: type[TransientError] = TransientError,
) -> ProviderError:
    """The daemon's error for a failed request whose answer was ``status``.

    ``quota``: the target's storage is full. ``retryable`` is the provider's own verdict
    (its quirk table); None leaves it to the status (:func:`retryable_status`). A retryable
    answer becomes ``transient`` (a :class:`TransientError` subclass) carrying ``retry_after``
    (the header's value, or seconds), anything else a :class:`PermanentError`.
    """
    if quota:
        return QuotaExceededError(message)
    if retryable if retryable is not None else retryable_status(status):
        seconds = retry_after if isinstance(retry_after, float | int) else parse_retry_after(retry_after)
        return transient(message, retry_after=seconds)
    return PermanentError(message)
