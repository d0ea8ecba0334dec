"""Device binding: which users a device may act for (README, "Security model").

A device only controls its own folder, so the ``user`` its envelope names is a claim, not an
identity. ``cloudwatcher load`` binds devices to users (``devices`` / ``device_users``); the
``device_binding`` setting says how claims are checked:

- ``listed`` (default): a listed device may act only for its users; an unlisted device is not
  restricted, and is warned about once per daemon run, so an operator notices it;
- ``strict``: as ``listed``, and an unlisted device may act for nobody;
- ``off``: the envelope's ``user`` is taken at face value.

The check runs before the user is looked up, so a bound device cannot probe which emails exist.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import asyncpg

from cloudwatcher.domain.errors import RequestError
from cloudwatcher.schema.sql import query

log = logging.getLogger(__name__)

BindingMode = Literal["listed", "strict", "off"]

_DEVICE_MAY_ACT_FOR = query("devices", "device_may_act_for")


@dataclass
class DeviceBinding:
    """The configured mode, and the unlisted devices already warned about in this run."""

    mode: BindingMode = "listed"
    warned: set[str] = field(default_factory=set)

    async def check(self, connection: asyncpg.Connection, device_id: str, email: str) -> None:
        """Raise ``forbidden`` when ``device_id`` may not act for ``email``."""
        if self.mode == "off":
            return
        row = await connection.fetchrow(_DEVICE_MAY_ACT_FOR, device_id, email)
        if row is None:
            if self.mode == "strict":
                raise RequestError("forbidden", f"device {device_id!r} is not listed, and device_binding is strict")
            if device_id not in self.warned:
                self.warned.add(device_id)
                log.warning(
                    "device %s is not listed in the reference data, so it may act for any user; "
                    'bind it with a devices entry in `cloudwatcher load`, or set device_binding = "strict"',
                    device_id,
                    extra={"device": device_id},
                )
            return
        if not row["bound"]:
            raise RequestError("forbidden", f"device {device_id!r} may not act for {email!r}")

    async def allows(self, connection: asyncpg.Connection, device_id: str, email: str) -> bool:
        """Whether ``device_id`` may act for ``email``: a refused claim names no sender."""
        try:
            await self.check(connection, device_id, email)
        except RequestError:
            return False
        return True
