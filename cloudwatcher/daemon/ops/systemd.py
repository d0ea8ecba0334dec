"""The sd_notify protocol, spoken directly: no libsystemd, no extra dependency.

systemd starts a ``Type=notify`` service with ``$NOTIFY_SOCKET`` naming an ``AF_UNIX``
datagram socket (a path, or an abstract name written with a leading ``@``). The service sends
newline-separated ``KEY=VALUE`` lines to it: ``READY=1`` once it is useful, ``STATUS=...`` for
``systemctl status``, ``WATCHDOG=1`` to prove it is alive, ``STOPPING=1`` on shutdown.
Reference: sd_notify(3).

The watchdog is the point of this module. systemd restarts a service that stops pinging
within ``WatchdogSec=``; a ping sent from a timer thread would keep a wedged daemon alive
forever. :func:`watchdog_loop` is an asyncio task instead, so a blocked event loop stops the
pings by itself, and it pings only while the daemon's own health check (event loop turning,
database answering) passes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping

from cloudwatcher.daemon.ops.status import TargetStatus

log = logging.getLogger(__name__)

__all__ = ["SystemdNotifier", "Watchdog", "backlog_status", "watchdog_interval", "watchdog_loop"]


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """How often to ping the watchdog, in seconds: half of ``$WATCHDOG_USEC``.

    None when systemd set no watchdog, or set it for another process (``$WATCHDOG_PID`` is
    our pid or unset, per sd_watchdog_enabled(3)). Half the timeout is what sd_watchdog_enabled
    recommends: one late ping is tolerated.
    """
    env = os.environ if environ is None else environ
    usec_text = env.get("WATCHDOG_USEC", "").strip()
    if not usec_text:
        return None
    pid_text = env.get("WATCHDOG_PID", "").strip()
    if pid_text:
        try:
            if int(pid_text) != os.getpid():
                return None
        except ValueError:
            return None
    try:
        usec = int(usec_text)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r: not an integer", usec_text)
        return None
    if usec <= 0:
        return None
    return usec / 1_000_000 / 2


def _socket_address(value: str) -> str | bytes:
    """``@name`` is an abstract socket (leading NUL byte); anything else is a path."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value


def backlog_status(targets: Iterable[TargetStatus]) -> str:
    """A one-line ``STATUS=`` text from the status snapshot's ``targets`` list.

    ``"local: 3 pending, 1 uploading, 2 failed (1 gave up) | sp: in sync"``: what an admin
    wants from ``systemctl status`` at a glance.
    """
    parts = []
    for target in targets:
        backlog = {"pending": target["pending"], "uploading": target["uploading"], "failed": target["failed"]}
        counts = [f"{int(count)} {key}" for key, count in backlog.items() if count]
        if target["gave_up"] and target["failed"]:
            counts[-1] += f" ({int(target['gave_up'])} gave up)"
        parts.append(f"{target['name']}: {', '.join(counts) if counts else 'in sync'}")
    return " | ".join(parts) if parts else "no targets"


class SystemdNotifier:
    """Sends sd_notify messages; does nothing at all when not started by systemd.

    ``socket_address`` defaults to ``$NOTIFY_SOCKET``. ``unset_environment=True`` removes
    ``NOTIFY_SOCKET``/``WATCHDOG_*`` from ``os.environ`` after reading them, like
    sd_notify(unset_environment=1), so that child processes (pg_dump, the embedded
    PostgreSQL) do not talk to systemd on our behalf.

    Sending never raises: a daemon must not die because systemd's socket went away.
    """

    def __init__(self, socket_address: str | None = None, *, unset_environment: bool = False) -> None:
        address = os.environ.get("NOTIFY_SOCKET") if socket_address is None else socket_address
        self._address: str | bytes | None = _socket_address(address) if address else None
        self._watchdog_interval = watchdog_interval()
        self._socket: socket.socket | None = None
        self._warned = False
        if unset_environment:
            for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
                os.environ.pop(name, None)

    @property
    def enabled(self) -> bool:
        """True when there is a notify socket to talk to."""
        return self._address is not None

    def watchdog_interval(self) -> float | None:
        """Seconds between watchdog pings (see :func:`watchdog_interval`), None if no watchdog."""
        if not self.enabled:
            return None
        return self._watchdog_interval

    # ------------------------------------------------------------------ messages
    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: start-up is complete; systemd now considers the unit active."""
        return self.notify(READY=1, STATUS=status) if status is not None else self.notify(READY=1)

    def status(self, text: str) -> bool:
        """``STATUS=text``, shown by ``systemctl status`` (one line; newlines become spaces)."""
        return self.notify(STATUS=text)

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: one keep-alive ping."""
        return self.notify(WATCHDOG=1)

    def stopping(self, status: str | None = None) -> bool:
        """``STOPPING=1``: shutdown has begun (systemd stops expecting watchdog pings soon)."""
        return self.notify(STOPPING=1, STATUS=status) if status is not None else self.notify(STOPPING=1)

    def reloading(self) -> bool:
        """``RELOADING=1`` with ``MONOTONIC_USEC`` (required by ``Type=notify-reload``).

        Send :meth:`ready` once the reload finished.
        """
        monotonic_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify(RELOADING=1, MONOTONIC_USEC=monotonic_usec)

    def extend_timeout(self, seconds: float) -> bool:
        """``EXTEND_TIMEOUT_USEC``: ask for more time during a slow start-up or shutdown."""
        return self.notify(EXTEND_TIMEOUT_USEC=int(seconds * 1_000_000))

    def notify(self, **fields: str | int | float) -> bool:
        """Send ``KEY=VALUE`` lines (keys as given, upper-cased); True when a datagram went out."""
        if self._address is None or not fields:
            return False
        lines = []
        for key, value in fields.items():
            text = str(value).replace("\r", " ").replace("\n", " ")
            lines.append(f"{key.upper()}={text}")
        payload = ("\n".join(lines) + "\n").encode("utf-8", errors="replace")
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                # systemd drains its queue quickly; wait a moment rather than drop READY=1
                # when it is momentarily full, but never hang the event loop.
                self._socket.settimeout(1.0)
            self._socket.sendto(payload, self._address)
        except OSError as exc:
            if not self._warned:
                log.warning("cannot send to systemd's notify socket: %s", exc)
                self._warned = True
            self.close()
            return False
        return True

    def close(self) -> None:
        """Close the socket (a later message opens a new one)."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None


async def watchdog_loop(
    notifier: SystemdNotifier,
    healthy: Callable[[], Awaitable[bool]],
    *,
    interval: float | None = None,
) -> None:
    """Ping ``WATCHDOG=1`` every ``interval`` seconds (default: the notifier's), but only
    when ``healthy()`` returns True within half an interval.

    Returns at once when there is no watchdog; otherwise runs until cancelled. An exception
    from ``healthy()`` counts as unhealthy. Because this is a coroutine on the daemon's own
    loop, a blocked loop stops the pings as well; systemd then restarts the service after
    ``WatchdogSec=``.
    """
    period = interval if interval is not None else notifier.watchdog_interval()
    if period is None or not notifier.enabled:
        return
    loop = asyncio.get_running_loop()
    was_healthy = True
    next_ping = loop.time()
    while True:
        reason = ""
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # races with the check finishing, and this task would then never stop.
            async with asyncio.timeout(period / 2):
                ok = bool(await healthy())
        except TimeoutError:
            ok, reason = False, f"health check took longer than {period / 2:.1f}s"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            ok, reason = False, f"health check failed: {exc!r}"
        if ok:
            notifier.watchdog()
            if not was_healthy:
                log.info("healthy again; watchdog pings resumed")
        elif was_healthy:
            log.warning(
                "unhealthy, withholding watchdog pings (systemd restarts the service if this lasts)%s",
                f": {reason}" if reason else "",
            )
        was_healthy = ok
        # Keep the cadence even when the health check is slow, without bursts of catch-up
        # pings after the loop was blocked.
        next_ping = max(next_ping + period, loop.time())
        await asyncio.sleep(next_ping - loop.time())


class Watchdog:
    """The :func:`watchdog_loop` task of a running daemon, from its start to its stop."""

    def __init__(self, notifier: SystemdNotifier, healthy: Callable[[], Awaitable[bool]]) -> None:
        self.notifier = notifier
        self.healthy = healthy
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(watchdog_loop(self.notifier, self.healthy), name="watchdog")

    async def stop(self) -> None:
        """Tell systemd the service is stopping (``STOPPING=1``), then end the pings."""
        self.notifier.stopping("finishing in-flight work")
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
