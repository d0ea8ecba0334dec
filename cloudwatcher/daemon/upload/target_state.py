"""Whether a target is working, parked by a daily cap, full, or failing (docs/ledger-and-requests.md, Statuses).

The state lives in ``target_states`` so that every daemon sharing the database sees it: the
claim statement hands out no row of a parked target, ``status`` shows it, and each change of
state that users care about is written to the notification outbox in the same transaction
(``target.failing``, ``target.recovered``, ``target.full``), so it is announced exactly once
even when several daemons notice it together.

- ``parked`` (a daily upload cap): no claims until ``until``; the rows keep their attempts.
- ``full`` (storage quota): rows give up at once; ``cloudwatcher retry`` resumes the target.
- ``failing``: :data:`FAILING_AFTER` uploads in a row failed for reasons not tied to one file.
- ``ok``: anything else, including a parking whose time has passed.

``status`` also shows ``paused`` (``cloudwatcher pause``, see :mod:`cloudwatcher.daemon.upload.pauses`),
which overrides all of these while it lasts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypedDict

import asyncpg

from cloudwatcher.daemon.upload.pauses import paused_targets
from cloudwatcher.jsonvalue import iso_utc
from cloudwatcher.schema import queries

__all__ = ["FAILING_AFTER", "TargetState", "TargetStateTracker", "target_states"]

#: Consecutive failed uploads (not file-specific) after which a target counts as failing.
FAILING_AFTER = 5
#: How long a success spares the next ones a look at the stored state.
CLEAN_FOR_SECONDS = 30.0


class TargetState(TypedDict):
    state: str  # "ok" | "parked" | "full" | "failing" | "paused"
    until: str | None  # ISO 8601, for "parked"
    reason: str | None
    since: str | None


async def target_states(connection: asyncpg.Connection | asyncpg.Pool) -> dict[str, TargetState]:
    """Every target with a recorded state; a target missing here is ``ok``.

    For ``status``: ``{"library": {"state": "full", "until": None, "reason": "...", "since": "..."}}``;
    a paused target reads ``paused`` whatever its uploads last reported.
    """
    states: dict[str, TargetState] = {}
    for row in await connection.fetch(queries.TARGET_STATES):
        ok = row["state"] == "ok"
        states[row["target"]] = {
            "state": row["state"],
            "until": None if ok else iso_utc(row["until"]),
            "reason": None if ok else row["reason"],
            "since": iso_utc(row["since"]),
        }
    # A pause is a person's decision: it is what the target is, whatever its uploads last reported.
    for target, pause in (await paused_targets(connection)).items():
        states[target] = {
            "state": "paused",
            "until": None,
            "reason": f"paused by {pause.paused_by}",
            "since": iso_utc(pause.paused_at),
        }
    return states


class TargetStateTracker:
    """One target's state as one uploader sees it; writes go to the database only on a change."""

    def __init__(self, pool: asyncpg.Pool, target: str) -> None:
        self.pool = pool
        self.target = target
        self._streak = 0  # consecutive failures not tied to one file
        # Until when this process may take the stored state to be plain "ok" without looking
        # (another daemon may mark the target; a success here then clears it within a while).
        self._clean_until = 0.0

    @property
    def troubled(self) -> bool:
        """Uploads failed lately for reasons not tied to one file."""
        return self._streak > 0

    async def succeeded(self) -> None:
        """An upload went through: a failing, full or parked target is working again."""
        self._streak = 0
        if time.monotonic() < self._clean_until:
            return
        await self._transition(_recover)
        self._clean_until = time.monotonic() + CLEAN_FOR_SECONDS

    async def failed(self, reason: str) -> None:
        """An upload failed for a reason that is not the file's own (timeouts, 5xx, auth...)."""
        self._streak += 1
        if self._streak >= FAILING_AFTER:
            self._clean_until = 0.0
            await self._transition(
                lambda current, _: ("failing", reason, None, "target.failing") if current == "ok" else None
            )

    async def park(self, until: datetime, reason: str) -> None:
        """A daily upload cap: no claims for this target until ``until``."""
        self._clean_until = 0.0
        await self._transition(lambda current, _: ("parked", reason, until, None))

    async def full(self, reason: str) -> None:
        """The storage quota is exhausted: shown as full until an upload succeeds or a retry."""
        self._clean_until = 0.0
        await self._transition(lambda current, _: ("full", reason, None, None if current == "full" else "target.full"))

    async def _transition(self, decide: Decide) -> None:
        """Lock the target's row, let ``decide(state, reason)`` pick (state, reason, until, event), write it."""
        async with self.pool.acquire() as connection, connection.transaction():
            await connection.execute(queries.ENSURE_TARGET_STATE, self.target)  # something to lock
            row = await connection.fetchrow(queries.TARGET_STATE_FOR_UPDATE, self.target)
            current, stored_reason = ("ok", None) if row is None else (row["state"], row["reason"])
            if current == "parked" and row is not None and row["until"] <= datetime.now(UTC):
                current, stored_reason = "ok", None  # the parking ran out
            change = decide(current, stored_reason)
            if change is None:
                return
            state, reason, until, event = change
            await connection.execute(queries.SET_TARGET_STATE, self.target, state, reason, until)
            if event is not None:
                await connection.execute(queries.NOTIFY_EVENT, event, self.target, None, None, reason)


Change = tuple[str, str | None, datetime | None, str | None]  # state, reason, until, event
Decide = Callable[[str, str | None], Change | None]


def _recover(current: str, reason: str | None) -> Change | None:
    """Back to ok; announced when it was failing or full (or resumed by a retry after being full)."""
    if current in ("failing", "full") or (current == "ok" and reason is not None):
        return "ok", None, None, "target.recovered"
    if current == "parked":
        return "ok", None, None, None
    return None
