"""The shipped Grafana dashboard and Prometheus alert rules: valid, and about series the daemon exports.

A renamed metric would otherwise leave a dashboard panel empty and an alert silent, with no error
anywhere; so every ``cloudwatcher_*`` name the files use is checked against the daemon's registry.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from cloudwatcher.daemon.ops import metrics

REPOSITORY = Path(__file__).resolve().parents[2]
ALERTS = REPOSITORY / "contrib" / "prometheus" / "alerts.yml"
DASHBOARD = REPOSITORY / "contrib" / "grafana" / "cloudwatcher.json"
ALERT_UNIT_TESTS = Path(__file__).with_name("alerts_test.yml")

_METRIC_NAME = re.compile(r"\bcloudwatcher_[a-z0-9_]+")

#: The series names each metric type puts in the text format, after the family's name.
_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
    "info": ("_info",),
    "gauge": ("",),
}


def exported_names(registry: CollectorRegistry) -> set[str]:
    """Every series name ``registry`` can export, including those of label sets not yet used."""
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def names_used(text: str) -> set[str]:
    return set(_METRIC_NAME.findall(text))


def unknown_names(text: str, registry: CollectorRegistry) -> set[str]:
    return names_used(text) - exported_names(registry)


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: `make promtool` installs Debian's prometheus package"
    return found


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_the_name_check_knows_the_text_format_suffixes_and_rejects_a_name_the_daemon_lacks() -> None:
    registry = CollectorRegistry()
    Counter("cloudwatcher_things", "", ["target"], registry=registry)
    Histogram("cloudwatcher_wait_seconds", "", registry=registry)
    Gauge("cloudwatcher_level", "", registry=registry)
    used = "cloudwatcher_things_total + cloudwatcher_wait_seconds_bucket + cloudwatcher_wait_seconds_sum"
    assert unknown_names(used + " + cloudwatcher_level", registry) == set()
    assert unknown_names("rate(cloudwatcher_things[5m]) + cloudwatcher_levels", registry) == {
        "cloudwatcher_things",
        "cloudwatcher_levels",
    }


def test_every_metric_the_alert_rules_name_is_exported_by_the_daemon() -> None:
    text = ALERTS.read_text()
    assert "cloudwatcher_stale_instances" in names_used(text)
    assert unknown_names(text, metrics.REGISTRY) == set()


def test_every_metric_the_grafana_dashboard_names_is_exported_by_the_daemon() -> None:
    text = DASHBOARD.read_text()
    assert len(names_used(text)) >= 10
    assert unknown_names(text, metrics.REGISTRY) == set()


def test_the_alert_rules_cover_failing_targets_backlog_age_gave_up_backups_and_stale_instances() -> None:
    assert {rule["alert"] for rule in alert_rules()} == {
        "CloudWatcherTargetFailing",
        "CloudWatcherBacklogGrowing",
        "CloudWatcherOldestPendingTooOld",
        "CloudWatcherFilesGaveUp",
        "CloudWatcherBackupTooOld",
        "CloudWatcherInstanceStale",
    }
    assert all(rule["labels"]["severity"] in {"warning", "critical"} for rule in alert_rules())


def test_promtool_accepts_the_alert_rules() -> None:
    result = subprocess.run([promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_each_alert_fires_on_the_series_that_should_trigger_it_and_not_on_healthy_ones() -> None:
    result = subprocess.run(
        [promtool(), "test", "rules", str(ALERT_UNIT_TESTS)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_grafana_dashboard_is_importable_json_with_a_query_in_every_panel() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "cloudwatcher"
    assert [entry["pluginId"] for entry in dashboard["__inputs"]] == ["prometheus"]
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert panels
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["targets"], panel["title"]
        assert all(target["expr"].strip() for target in panel["targets"]), panel["title"]
