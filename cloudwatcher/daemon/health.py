"""Track database reachability so the daemon can ride out an outage, and give up after a bound."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import asyncpg
from asyncpg.exceptions._base import DataError as ClientDataError

log = logging.getLogger(__name__)

#: Errors that mean "the database is not reachable right now", as opposed to a bug or bad data.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ConnectionError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.ConnectionDoesNotExistError,
    TimeoutError,
    # A connection the server dropped while asyncpg was mid-protocol, e.g. `pool.release` ->
    # `reset` during a shutdown: "cannot switch to state 15; another operation (2) is in progress".
    asyncpg.InternalClientError,
)

#: Errors that mean "PostgreSQL cannot take this input": the entry or batch item at fault fails,
#: everything else flows. asyncpg's client-side ``DataError`` (a str it cannot encode, such as a
#: lone surrogate from a non-UTF-8 file name) subclasses ``InterfaceError`` and so also matches
#: :data:`CONNECTION_ERRORS`: catch these first, or a bad row looks like an outage and is retried
#: forever while every device waits behind it.
DATA_ERRORS: tuple[type[BaseException], ...] = (
    ClientDataError,
    asyncpg.DataError,  # SQLSTATE class 22: NUL in text, untranslatable characters, out of range
    asyncpg.IntegrityConstraintViolationError,  # class 23
    asyncpg.ProgramLimitExceededError,  # class 54: a value too large for an index row
)

MAX_OUTAGE_SECONDS = 300.0


class DatabaseHealth:
    """Shared by every component that talks to the database."""

    def __init__(self, max_outage_seconds: float = MAX_OUTAGE_SECONDS) -> None:
        self.max_outage_seconds = max_outage_seconds
        self._down_since: float | None = None
        self.last_error = ""
        self.on_recovered: list[Callable[[], None]] = []

    @property
    def healthy(self) -> bool:
        return self._down_since is None

    def failed(self, error: BaseException) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("database unreachable (%s); retrying with backoff", error)
        self.last_error = str(error) or type(error).__name__

    def succeeded(self) -> None:
        if self._down_since is not None:
            log.info("database reachable again after %.0f s", time.monotonic() - self._down_since)
            self._down_since = None
            self.last_error = ""
            for callback in self.on_recovered:
                callback()

    @property
    def outage_seconds(self) -> float:
        return 0.0 if self._down_since is None else time.monotonic() - self._down_since

    @property
    def outage_too_long(self) -> bool:
        return self.outage_seconds > self.max_outage_seconds
