"""What every part of one target's uploader works with, passed as one value.

The worker, the write-back and the outcome handling of a target all need its name, provider,
ledger, database health, retry settings and this instance's id; one frozen record keeps their
constructors short and says that these never change while the target runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from cloudwatcher.config.settings import RetrySettings
from cloudwatcher.daemon.health import DatabaseHealth
from cloudwatcher.daemon.ledger.store import Ledger
from cloudwatcher.providers import Provider


@dataclass(frozen=True)
class UploadContext:
    name: str  # the target's
    provider: Provider
    ledger: Ledger
    health: DatabaseHealth
    retry: RetrySettings
    instance_id: UUID | None  # this daemon's, carried by every claim and write-back
