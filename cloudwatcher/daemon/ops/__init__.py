"""What an admin and systemd see of a running daemon: the status snapshot (``status``), the
Prometheus series (``metrics``), the liveness check behind ``/healthz`` and the watchdog
(``liveness``, ``stall``) and the sd_notify protocol (``systemd``).

Nothing here serves HTTP (that is :mod:`cloudwatcher.daemon.http`) or runs on a schedule (the
status publisher is a job of :mod:`cloudwatcher.daemon.jobs.scheduler`); import the modules.
"""

__all__: list[str] = []
