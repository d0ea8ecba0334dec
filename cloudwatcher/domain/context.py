"""What every handler receives, and the agent_decisions log the built-in agents write to."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from cloudwatcher.domain.authorization import Actor
from cloudwatcher.domain.responses import to_json
from cloudwatcher.schema.sql import query

_DECISION = query("requests", "decision")


@dataclass(frozen=True)
class HandlerContext:
    """One request being applied: its connection (inside the request's savepoint), actor and id."""

    connection: asyncpg.Connection
    actor: Actor
    request_id: UUID

    async def decide(
        self,
        agent: str,
        decision_type: str,
        decision: str,
        reasoning: dict[str, Any],
        confidence: float = 1.0,
    ) -> None:
        """Record a routing or selection choice with its reasons, so an operator can ask why."""
        await self.connection.execute(
            _DECISION,
            self.request_id,
            agent,
            decision_type,
            decision,
            to_json(reasoning),
            Decimal(str(round(confidence, 2))),
        )
