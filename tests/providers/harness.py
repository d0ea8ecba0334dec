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

FaultKind = Literal["transient", "permanent", "hash_mismatch"]


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


HarnessFactory = Callable[..., contextlib.AbstractContextManager[ProviderHarness]]


@contextlib.contextmanager
def no_fault() -> Iterator[None]:
    yield
