"""The metrics helpers, read back through prometheus-client's own text parser."""

from __future__ import annotations

import uuid
from typing import cast

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from cloudwatcher import __version__
from cloudwatcher.daemon.ops import metrics
from cloudwatcher.daemon.ops.status import StatusSnapshot


def samples() -> list[Sample]:
    return [sample for family in text_string_to_metric_families(metrics.render().decode()) for sample in family.samples]


def value(name: str, **labels: str) -> float | None:
    """The parsed value of one series, None when it is not exported."""
    for sample in samples():
        if sample.name == name and sample.labels == labels:
            return sample.value
    return None


def unique_target() -> str:
    """Tests share the module-level registry; a fresh target name keeps them apart."""
    return f"t-{uuid.uuid4().hex[:8]}"


def test_every_exported_name_starts_with_cloudwatcher() -> None:
    metrics.record_watcher_event("added")
    names = {sample.name for sample in samples()}
    assert names
    assert all(name.startswith("cloudwatcher_") for name in names), sorted(names)


def test_a_synced_upload_counts_bytes_and_latencies() -> None:
    target = unique_target()
    metrics.record_upload(target, "s3", "synced", 2048, 0.3, drop_to_synced_seconds=4.0)
    metrics.record_upload(target, "s3", "synced", 1024, 0.1)

    assert value("cloudwatcher_uploads_total", target=target, provider="s3", outcome="synced") == 2
    assert value("cloudwatcher_upload_bytes_total", target=target, provider="s3") == 3072
    assert value("cloudwatcher_upload_duration_seconds_count", target=target, provider="s3") == 2
    assert value("cloudwatcher_drop_to_synced_seconds_count", target=target) == 1
    assert value("cloudwatcher_drop_to_synced_seconds_sum", target=target) == 4.0
    assert value("cloudwatcher_drop_to_synced_seconds_bucket", target=target, le="5.0") == 1
    assert value("cloudwatcher_drop_to_synced_seconds_bucket", target=target, le="2.5") == 0
    assert value("cloudwatcher_uploads_failed_total", target=target, reason="other") is None


def test_a_failed_upload_counts_a_failure_by_reason_and_no_bytes() -> None:
    target = unique_target()
    metrics.record_upload(target, "sharepoint", "failed", 500, 1.5, reason="rate_limited")
    metrics.record_upload(target, "sharepoint", "gave_up", 500, reason="auth")

    assert value("cloudwatcher_uploads_total", target=target, provider="sharepoint", outcome="failed") == 1
    assert value("cloudwatcher_uploads_total", target=target, provider="sharepoint", outcome="gave_up") == 1
    assert value("cloudwatcher_uploads_failed_total", target=target, reason="rate_limited") == 1
    assert value("cloudwatcher_uploads_failed_total", target=target, reason="auth") == 1
    assert value("cloudwatcher_upload_duration_seconds_count", target=target, provider="sharepoint") == 1
    assert value("cloudwatcher_upload_bytes_total", target=target, provider="sharepoint") is None


def test_a_reason_outside_the_fixed_set_counts_as_other() -> None:
    target = unique_target()
    metrics.record_upload(target, "s3", "failed", 1, 0.1, reason=f"made-up-{uuid.uuid4().hex}")
    assert value("cloudwatcher_uploads_failed_total", target=target, reason="other") == 1
    assert not any("made-up" in str(sample.labels) for sample in samples())


def test_backlog_sets_every_waiting_status_and_zeroes_missing_ones() -> None:
    target = unique_target()
    metrics.set_backlog(target, {"pending": 7, "failed": 2, "gave_up": 1}, 42.5, 1)
    assert value("cloudwatcher_backlog", target=target, status="pending") == 7
    assert value("cloudwatcher_oldest_pending_age_seconds", target=target) == 42.5
    assert value("cloudwatcher_retry_queue", target=target) == 1

    metrics.set_backlog(target, {"synced": 9}, None, 0)
    assert value("cloudwatcher_backlog", target=target, status="pending") == 0
    assert value("cloudwatcher_backlog", target=target, status="synced") is None
    assert value("cloudwatcher_backlog", target=target, status="uploading") == 0
    assert value("cloudwatcher_oldest_pending_age_seconds", target=target) == 0
    assert value("cloudwatcher_retry_queue", target=target) == 0


def test_request_labels_from_devices_cannot_create_unbounded_series() -> None:
    before = value("cloudwatcher_requests_total", type="other", outcome="pending", code="none") or 0
    metrics.record_request(f"made-up-{uuid.uuid4().hex}", "pending")
    metrics.record_request("consume_parts", "failed", "insufficient_stock")
    metrics.record_request("get_parts", "failed", "weird code from nowhere")

    assert value("cloudwatcher_requests_total", type="other", outcome="pending", code="none") == before + 1
    assert (
        value("cloudwatcher_requests_total", type="consume_parts", outcome="failed", code="insufficient_stock") or 0
    ) >= 1
    assert (value("cloudwatcher_requests_total", type="get_parts", outcome="failed", code="other") or 0) >= 1
    assert not any("made-up" in str(sample.labels) for sample in samples())


def test_ingest_latency_watcher_events_and_pool() -> None:
    count_before = value("cloudwatcher_ingest_latency_seconds_count") or 0
    overflow_before = value("cloudwatcher_watcher_events_total", kind="overflow") or 0
    metrics.observe_ingest_latency(0.02)
    metrics.record_watcher_event("overflow")
    metrics.set_pool(in_use=3, idle=2)

    assert value("cloudwatcher_ingest_latency_seconds_count") == count_before + 1
    assert value("cloudwatcher_watcher_events_total", kind="overflow") == overflow_before + 1
    assert value("cloudwatcher_db_pool_connections", state="in_use") == 3
    assert value("cloudwatcher_db_pool_connections", state="idle") == 2


def test_forget_target_removes_only_that_targets_series() -> None:
    gone, kept = unique_target(), unique_target()
    for target in (gone, kept):
        metrics.record_upload(target, "local", "synced", 1, 0.1, drop_to_synced_seconds=1)
        metrics.set_backlog(target, {"pending": 1}, 1.0, 0)

    metrics.forget_target(gone)

    exported = [sample for sample in samples() if sample.labels.get("target") in (gone, kept)]
    assert {sample.labels["target"] for sample in exported} == {kept}


def test_lost_claims_are_counted_per_target_and_forgotten_with_it() -> None:
    target = unique_target()
    metrics.record_claims_lost(target, 3)
    metrics.record_claims_lost(target, 2)
    assert value("cloudwatcher_claims_lost_total", target=target) == 5

    metrics.forget_target(target)

    assert value("cloudwatcher_claims_lost_total", target=target) is None


def test_the_daemons_own_process_metrics_are_exported() -> None:
    assert (value("cloudwatcher_process_resident_memory_bytes") or 0) > 0


def test_publish_status_takes_the_status_snapshot_shape() -> None:
    target = unique_target()
    snapshot = {
        "targets": [
            {
                "name": target,
                "provider": "s3",
                "pending": 5,
                "uploading": 1,
                "synced": 40,
                "failed": 3,
                "gave_up": 1,
                "oldest_pending_age_seconds": 12.5,
                "last_synced_at": None,
            }
        ]
    }
    metrics.publish_status(cast(StatusSnapshot, snapshot))
    assert value("cloudwatcher_backlog", target=target, status="pending") == 5
    assert value("cloudwatcher_backlog", target=target, status="gave_up") == 1
    assert value("cloudwatcher_backlog", target=target, status="failed") == 2  # the gave_up row counts once
    assert value("cloudwatcher_backlog", target=target, status="synced") is None
    backlog = sum(value("cloudwatcher_backlog", target=target, status=s) or 0 for s in metrics.LEDGER_STATUSES)
    assert backlog == 5 + 1 + 3
    assert value("cloudwatcher_retry_queue", target=target) == 2
    assert value("cloudwatcher_oldest_pending_age_seconds", target=target) == 12.5


def test_build_info_carries_the_installed_version() -> None:
    assert value("cloudwatcher_build_info", version=__version__) == 1


def test_stale_instances_count_the_snapshots_instances_marked_stale() -> None:
    instances = [{"id": str(n), "host": "h", "pid": n, "stale": stale} for n, stale in enumerate((True, False, True))]
    metrics.publish_status(cast(StatusSnapshot, {"targets": [], "instances": instances}))
    assert value("cloudwatcher_stale_instances") == 2
    metrics.publish_status(cast(StatusSnapshot, {"targets": [], "instances": [{"id": "0", "stale": False}]}))
    assert value("cloudwatcher_stale_instances") == 0


def test_skipped_files_are_exported_for_every_reason_from_the_start_and_counted() -> None:
    for reason in ("name", "symlink", "type", "unreadable", "too_long", "mtime"):
        assert value("cloudwatcher_skipped_files_total", reason=reason) is not None
    before = value("cloudwatcher_skipped_files_total", reason="type")
    assert before is not None
    metrics.record_skipped_file("type")
    assert value("cloudwatcher_skipped_files_total", reason="type") == before + 1
