"""What the conformance suite needs from each provider's test set-up.

Each provider module in this folder (``harness_<provider>.py``) exposes a context manager
``make_harness(tmp_path)`` yielding a :class:`ProviderHarness`; ``conftest.py`` lists them and
parametrises the suite over all of them, so a new provider is done when the suite passes
unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from cloudwatcher.providers import Provider

FaultKind = Literal["transient", "permanent", "hash_mismatch", "throttled", "quota"]
#: The faults every provider can meet; ``throttled`` (the server asks for a pause of
#: ``THROTTLE_SECONDS`` through Retry-After) and ``quota`` (the store is full) only where the
#: service has them.
EVERY_PROVIDER_FAULTS: frozenset[FaultKind] = frozenset({"transient", "permanent", "hash_mismatch"})
THROTTLE_SECONDS = 7


@dataclass
class Sessions:
    """The server side of resumable uploads, for providers that have upload sessions."""

    #: How many upload sessions the server holds unfinished.
    open: Callable[[], int]
    #: The server forgets every session (expired, or aborted behind the daemon's back).
    expire: Callable[[], None]


@dataclass
class ProviderHarness:
    provider: Provider
    #: ``fault(kind)`` is a context manager; inside it the next upload meets that fault once
    #: (transient: a 503/429-style error, then success on retry; permanent: a 403-style refusal;
    #: hash_mismatch: the server reports a hash that does not match the bytes).
    fault: Callable[[FaultKind], contextlib.AbstractContextManager[None]]
    #: The provider's upload chunk size (for exactly-one-chunk and multi-chunk files), or None.
    chunk_size: int | None
    #: Names the provider must rename (its forbidden characters); empty when it forbids none.
    forbidden_name: str | None = None
    #: Whether a hash mismatch after a complete, acknowledged upload is the server's own
    #: rewrite, recorded as ``server-modified`` (SharePoint), rather than a failed attempt.
    mismatch_is_server_modified: bool = False
    #: The kinds ``fault`` can bring about.
    faults: frozenset[FaultKind] = EVERY_PROVIDER_FAULTS
    #: The server's upload sessions; None for a provider that uploads in one piece.
    sessions: Sessions | None = None


HarnessFactory = Callable[..., contextlib.AbstractContextManager[ProviderHarness]]


@contextlib.contextmanager
def no_fault() -> Iterator[None]:
    yield
