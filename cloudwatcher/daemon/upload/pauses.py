"""Pausing uploads to one target (``cloudwatcher pause`` / ``resume``).

A pause is one row in ``target_pauses``. The claim statement and the recording hand-off both
skip a paused target, so every daemon on the database obeys at its next claim (an idle
uploader looks every few seconds), a restart keeps the pause, and files go on being recorded
as ``pending`` rows that are uploaded once the target is resumed. Uploads already in flight
when the pause lands finish normally.
"""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from cloudwatcher.schema import queries

__all__ = ["Pause", "pause_target", "paused_targets", "resume_target", "who_is_pausing"]


@dataclass(frozen=True)
class Pause:
    """Who paused a target, and when."""

    paused_at: datetime
    paused_by: str


def who_is_pausing() -> str:
    """``user@host`` of this command, shown by ``status`` so people know whom to ask."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no $USER (containers, DynamicUser=)
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


async def pause_target(connection: asyncpg.Connection, target: str, paused_by: str) -> bool:
    """Pause ``target``; False when it was paused already (the first pause is kept)."""
    return await connection.fetchval(queries.PAUSE_TARGET, target, paused_by) is not None


async def resume_target(connection: asyncpg.Connection, target: str) -> bool:
    """Resume ``target``; False when it was not paused."""
    return await connection.fetchval(queries.RESUME_TARGET, target) is not None


async def paused_targets(connection: asyncpg.Connection | asyncpg.Pool) -> dict[str, Pause]:
    """Every paused target."""
    rows = await connection.fetch(queries.TARGET_PAUSES)
    return {row["target"]: Pause(row["paused_at"], row["paused_by"]) for row in rows}
