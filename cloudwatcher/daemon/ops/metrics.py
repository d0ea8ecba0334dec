"""Prometheus metrics for ``GET /metrics`` (docs/operations.md, Metrics).

Everything lives in one dedicated :data:`REGISTRY`, not prometheus-client's global one, so
that tests and embedding code never see a library's stray collectors and a name can never be
registered twice by an import side effect. Every name starts with ``cloudwatcher_``;
per-target series carry a ``target`` label.

The daemon calls the plain ``record_*``/``set_*``/``observe_*`` functions below; nothing else
needs to know prometheus-client. Label values that come from field devices (request types,
error codes) are folded into a fixed set, so a device cannot create unbounded series.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import get_args

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

from cloudwatcher import __version__
from cloudwatcher.daemon.ops.status import StatusSnapshot
from cloudwatcher.daemon.upload.failure_reasons import FAILURE_REASONS
from cloudwatcher.domain.errors import ErrorCode
from cloudwatcher.gateway import SkipReason

__all__ = [
    "CONTENT_TYPE",
    "LEDGER_STATUSES",
    "REGISTRY",
    "forget_target",
    "observe_drop_to_synced",
    "observe_ingest_latency",
    "publish_status",
    "record_claims_lost",
    "record_request",
    "record_skipped_file",
    "record_upload",
    "record_watcher_event",
    "render",
    "set_backlog",
    "set_last_backup",
    "set_pool",
]

#: The Prometheus text exposition format version 0.0.4, which :func:`render` produces.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Backlog statuses always exported per target (missing ones are set to 0, not left stale).
#: ``failed`` here is the rows still to be retried: a row that gave up is counted once, as ``gave_up``.
LEDGER_STATUSES = ("pending", "uploading", "failed", "gave_up")

#: Request types with their own series; anything else a device invents counts as "other".
KNOWN_REQUEST_TYPES = frozenset(
    {
        "get_parts",
        "update_inventory",
        "consume_parts",
        "create_order",
        "approve_order",
        "reject_order",
        "place_order",
        "receive_order",
        "cancel_order",
        "invalid",
    }
)
#: Error codes of docs/ledger-and-requests.md (the domain's own list), plus "none" for success.
KNOWN_ERROR_CODES = frozenset({"none", *get_args(ErrorCode)})

# The *_created series double the output and no dashboard of ours reads them.
disable_created_metrics()

REGISTRY = CollectorRegistry(auto_describe=True)
# CPU, memory, open files and start time of the daemon itself, under our prefix.
ProcessCollector(namespace="cloudwatcher", registry=REGISTRY)

# Latency buckets from a second to a day: a file waits for settle, a batch, maybe retries.
_SYNC_BUCKETS = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 86400)
_SHORT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

UPLOADS = Counter(
    "cloudwatcher_uploads",
    "Upload attempts by outcome (synced, failed, gave_up, ...).",
    ["target", "provider", "outcome"],
    registry=REGISTRY,
)
UPLOAD_BYTES = Counter(
    "cloudwatcher_upload_bytes",
    "Bytes of files uploaded and verified.",
    ["target", "provider"],
    registry=REGISTRY,
)
UPLOAD_FAILURES = Counter(
    "cloudwatcher_uploads_failed",
    "Failed upload attempts by reason (" + ", ".join(sorted(FAILURE_REASONS)) + ").",
    ["target", "reason"],
    registry=REGISTRY,
)
UPLOAD_DURATION = Histogram(
    "cloudwatcher_upload_duration_seconds",
    "Duration of one upload attempt, from claim to verified (or failed).",
    ["target", "provider"],
    buckets=(*_SHORT_BUCKETS, 120, 300, 600, 1800, 3600),
    registry=REGISTRY,
)
BACKLOG = Gauge(
    "cloudwatcher_backlog",
    "Rows not yet synced per target: pending, uploading, failed (to be retried) and gave_up (no next attempt).",
    ["target", "status"],
    registry=REGISTRY,
)
OLDEST_PENDING_AGE = Gauge(
    "cloudwatcher_oldest_pending_age_seconds",
    "Age of the oldest row still waiting for upload (0 when none waits).",
    ["target"],
    registry=REGISTRY,
)
RETRY_QUEUE = Gauge(
    "cloudwatcher_retry_queue",
    "Failed rows scheduled for another attempt.",
    ["target"],
    registry=REGISTRY,
)
DROP_TO_SYNCED = Histogram(
    "cloudwatcher_drop_to_synced_seconds",
    "Time from a file being noticed to its verified copy on the target.",
    ["target"],
    buckets=_SYNC_BUCKETS,
    registry=REGISTRY,
)
REQUESTS = Counter(
    "cloudwatcher_requests",
    "Request envelopes handled, by type, outcome and error code.",
    ["type", "outcome", "code"],
    registry=REGISTRY,
)
INGEST_LATENCY = Histogram(
    "cloudwatcher_ingest_latency_seconds",
    "Time to apply one request envelope and write its response.",
    buckets=_SHORT_BUCKETS,
    registry=REGISTRY,
)
WATCHER_EVENTS = Counter(
    "cloudwatcher_watcher_events",
    "File-system events and scan findings by kind (added, modified, deleted, overflow, rescan, ...).",
    ["kind"],
    registry=REGISTRY,
)
CLAIMS_LOST = Counter(
    "cloudwatcher_claims_lost",
    "Claimed rows whose result was not written back (or whose upload was not started) because "
    "their claim had passed to another instance after the lease ran out.",
    ["target"],
    registry=REGISTRY,
)
TARGET_STATE = Gauge(
    "cloudwatcher_target_state",
    "1 for the state each target is in (ok, failing, paused, parked, full), 0 for the others.",
    ["target", "state"],
    registry=REGISTRY,
)
#: The states of ``cloudwatcher_target_state``; every one is exported per target (0 or 1).
TARGET_STATES = ("ok", "failing", "paused", "parked", "full")
SKIPPED_FILES = Counter(
    "cloudwatcher_skipped_files",
    "Device files skipped (each path once per daemon run), by reason: "
    "name, symlink, type, unreadable, too_long, mtime.",
    ["reason"],
    registry=REGISTRY,
)
for _reason in get_args(SkipReason):  # every reason exported from the start, at 0
    SKIPPED_FILES.labels(_reason)
DB_POOL = Gauge(
    "cloudwatcher_db_pool_connections",
    "Database pool connections by state (in_use, idle).",
    ["state"],
    registry=REGISTRY,
)
LAST_BACKUP = Gauge(
    "cloudwatcher_last_backup_timestamp_seconds",
    "Unix time of the newest scheduled backup (0 until one exists).",
    registry=REGISTRY,
)
# Exported as cloudwatcher_build_info{version} = 1: dashboards tell daemons and upgrades apart by it.
BUILD_INFO = Info("cloudwatcher_build", "The daemon's version.", registry=REGISTRY)
BUILD_INFO.info({"version": __version__})
STALE_INSTANCES = Gauge(
    "cloudwatcher_stale_instances",
    "Daemon instances on this database whose heartbeat is overdue (from the status snapshot); "
    "one that crashed or hangs without being stopped.",
    registry=REGISTRY,
)


class _TargetSeries:
    """The label children one target's uploads touch, looked up once.

    ``labels()`` validates and locks on every call; at thousands of uploads per second that was
    a fifth of the event loop's time in the burst benchmark, so each target's children are kept.
    """

    def __init__(self, target: str, provider: str) -> None:
        self.synced = UPLOADS.labels(target, provider, "synced")
        self.bytes = UPLOAD_BYTES.labels(target, provider)
        self.drop_to_synced = DROP_TO_SYNCED.labels(target)


_series: dict[tuple[str, str], _TargetSeries] = {}


def record_upload(
    target: str,
    provider: str,
    outcome: str,
    size: int,
    latency_seconds: float | None = None,
    *,
    reason: str | None = None,
    drop_to_synced_seconds: float | None = None,
) -> None:
    """Count one finished upload attempt.

    ``outcome`` is ``"synced"`` for a verified copy (then ``size`` bytes are counted), anything
    else (``"failed"``, ``"gave_up"``, ...) also counts as a failure of ``reason`` (one of
    :data:`FAILURE_REASONS`, anything else counts as ``"other"``). ``latency_seconds`` is the
    attempt's own duration; ``drop_to_synced_seconds`` (synced only) the time since the daemon
    noticed the file.
    """
    if outcome == "synced":
        series = _series.get((target, provider))
        if series is None:
            series = _series[(target, provider)] = _TargetSeries(target, provider)
        series.synced.inc()
        series.bytes.inc(max(0, size))
        if drop_to_synced_seconds is not None:
            series.drop_to_synced.observe(max(0.0, drop_to_synced_seconds))
    else:
        UPLOADS.labels(target, provider, outcome).inc()
        UPLOAD_FAILURES.labels(target, reason if reason in FAILURE_REASONS else "other").inc()
    if latency_seconds is not None:
        UPLOAD_DURATION.labels(target, provider).observe(max(0.0, latency_seconds))


def observe_drop_to_synced(target: str, seconds: float) -> None:
    """One file reached ``target``, ``seconds`` after it was noticed."""
    DROP_TO_SYNCED.labels(target).observe(max(0.0, seconds))


def record_request(type: str, outcome: str, code: str | None = None) -> None:
    """Count one handled request (``outcome``: completed, failed, pending, duplicate, ...).

    Unknown ``type`` and ``code`` values become ``"other"``: they come from devices.
    """
    request_type = type if type in KNOWN_REQUEST_TYPES else "other"
    error_code = code or "none"
    if error_code not in KNOWN_ERROR_CODES:
        error_code = "other"
    REQUESTS.labels(request_type, outcome, error_code).inc()


def observe_ingest_latency(seconds: float) -> None:
    """One request took ``seconds`` from reading its file to its committed response."""
    INGEST_LATENCY.observe(max(0.0, seconds))


def set_backlog(
    target: str,
    counts: Mapping[str, int],
    oldest_pending_age: float | None,
    retry_queue: int,
) -> None:
    """Publish one target's backlog (e.g. from the status snapshot).

    ``counts`` maps status to rows; the statuses of :data:`LEDGER_STATUSES` that are missing
    are set to 0 so a drained backlog reads 0 rather than its last value; synced rows are no backlog.
    ``oldest_pending_age`` None (nothing waiting) is exported as 0.
    """
    for status in LEDGER_STATUSES:
        BACKLOG.labels(target, status).set(counts.get(status, 0))
    OLDEST_PENDING_AGE.labels(target).set(oldest_pending_age or 0.0)
    RETRY_QUEUE.labels(target).set(retry_queue)


def publish_status(snapshot: StatusSnapshot) -> None:
    """Publish the backlog gauges from a status snapshot (the shape of ``status --json``).

    The snapshot's ``failed`` counts every failed row, ``gave_up`` included (as ``status`` shows
    them); the backlog's ``failed`` is only those that will be retried, so no row counts twice.
    """
    for target in snapshot.get("targets", []):
        counts = {
            "pending": target["pending"],
            "uploading": target["uploading"],
            "failed": max(0, target["failed"] - target["gave_up"]),
            "gave_up": target["gave_up"],
        }
        age = target.get("oldest_pending_age_seconds")
        set_backlog(str(target["name"]), counts, float(age) if age is not None else None, counts["failed"])
        current = str(target.get("state") or "ok")
        for state in {*TARGET_STATES, current}:
            TARGET_STATE.labels(str(target["name"]), state).set(1 if state == current else 0)
    STALE_INSTANCES.set(sum(1 for instance in snapshot.get("instances", []) if instance.get("stale")))


def record_claims_lost(target: str, count: int) -> None:
    """``count`` claims of ``target`` were found lost when writing back (or before uploading)."""
    CLAIMS_LOST.labels(target).inc(count)


def record_watcher_event(kind: str) -> None:
    """Count one watcher event or scan finding of ``kind``."""
    WATCHER_EVENTS.labels(kind).inc()


def record_skipped_file(reason: str) -> None:
    """Count one device file skipped for ``reason`` (a fixed set: see :mod:`cloudwatcher.gateway`)."""
    SKIPPED_FILES.labels(reason).inc()


def set_pool(in_use: int, idle: int) -> None:
    """Publish the database pool's connections (asyncpg: size minus idle, idle)."""
    DB_POOL.labels("in_use").set(in_use)
    DB_POOL.labels("idle").set(idle)


def set_last_backup(timestamp: float) -> None:
    """A scheduled backup was completed (or found at start-up) with this modification time."""
    LAST_BACKUP.set(timestamp)


def forget_target(target: str) -> None:
    """Drop every series of a target that was removed from the configuration (on reload)."""
    for key in [key for key in _series if key[0] == target]:
        del _series[key]
    for metric in (UPLOADS, UPLOAD_BYTES, UPLOAD_FAILURES, UPLOAD_DURATION, BACKLOG, DROP_TO_SYNCED):
        for labels in list(_label_sets(metric)):
            if labels[0] == target:
                metric.remove(*labels)
    for labels in list(_label_sets(TARGET_STATE)):
        if labels[0] == target:
            TARGET_STATE.remove(*labels)
    for metric in (OLDEST_PENDING_AGE, RETRY_QUEUE, CLAIMS_LOST):
        for labels in list(_label_sets(metric)):
            if labels == (target,):
                metric.remove(target)


def _label_sets(metric: Counter | Gauge | Histogram) -> list[tuple[str, ...]]:
    """The label-value tuples a metric currently exports (prometheus-client keeps them privately)."""
    return [tuple(labels) for labels in metric._metrics]


def render() -> bytes:
    """The registry in the Prometheus text format (see :data:`CONTENT_TYPE`)."""
    return generate_latest(REGISTRY)
