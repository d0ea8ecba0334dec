"""``status`` for people: 80 columns, whole names, ages, states; device paths cannot forge output."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from rich.cells import cell_len

from cloudwatcher.cli.status_text import age, render_status
from cloudwatcher.daemon.ops.status import StatusSnapshot

NOW = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)
LONG_TARGET = "t" * 63  # the longest name a target may have
LONG_DEVICE = "d" * 50  # the longest device id


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).isoformat()


def snapshot(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "version": "1.0",
        "targets": [
            {
                "name": LONG_TARGET,
                "provider": "sharepoint",
                "pending": 123456,
                "uploading": 64,
                "synced": 98765432,
                "failed": 4321,
                "gave_up": 12,
                "oldest_pending_age_seconds": 3.2,
                "last_synced_at": ago(3),
                "state": "failing",
                "state_reason": "TransientError: " + "the service answered 503 Service Unavailable " * 3,
                "state_until": None,
            },
            {
                "name": "local",
                "provider": "local",
                "pending": 0,
                "uploading": 0,
                "synced": 5,
                "failed": 0,
                "gave_up": 0,
                "oldest_pending_age_seconds": None,
                "last_synced_at": None,
                "state": "paused",
                "state_reason": "paused by rita@depot",
                "state_until": None,
            },
        ],
        "requests": {"pending": 1, "processing": 0, "completed": 20, "failed": 2},
        "devices": [{"device_id": LONG_DEVICE, "online": False, "last_seen_at": ago(7200), "files": 1234567}],
        "recent_failures": [
            {
                "ref_id": "0b6a4c8e-5b7e-4c1f-9d51-0a3b1e0c2f11",
                "target": LONG_TARGET,
                "local_path": f"{LONG_DEVICE}/requests/" + "deep/" * 30 + "file.json",
                "attempts": 3,
                "last_error": "OSError: " + "x" * 200,
                "next_attempt_at": (NOW + timedelta(seconds=5)).isoformat(),
            }
        ],
        "instances": [
            {
                "id": "6f2d2a0e-98f4-4a45-8d0e-6d0c6f1c1a10",
                "host": "depot-server.example",
                "pid": 4242,
                "version": "1.0",
                "started_at": ago(600),
                "last_heartbeat": ago(2),
                "stale": False,
            }
        ],
    }
    base.update(changes)
    return base


def test_every_line_fits_80_columns_and_every_name_is_whole() -> None:
    text = render_status(cast(StatusSnapshot, snapshot()), width=80, now=NOW)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any(line.strip().startswith(LONG_TARGET) for line in lines)
    assert any(line.strip().startswith(LONG_DEVICE) for line in lines)
    assert "local" in text


def test_targets_show_their_state_and_reason() -> None:
    text = render_status(cast(StatusSnapshot, snapshot()), width=80, now=NOW)
    lines = text.splitlines()
    assert any(line.startswith("    failing  123456 pending") for line in lines), text
    assert "failing: TransientError: the service answered 503" in text
    assert "  local  paused  0 pending" in text and "    paused by rita@depot" in text


def test_ages_read_as_seconds_minutes_hours_or_days_ago() -> None:
    assert age(ago(3), NOW) == "3 s ago"
    assert age(ago(600), NOW) == "10 min ago"
    assert age(ago(7200), NOW) == "2 h ago"
    assert age(ago(3 * 86400), NOW) == "3 d ago"
    assert age((NOW + timedelta(seconds=5)).isoformat(), NOW) == "in 5 s"
    assert age(None, NOW) == "never"
    text = render_status(cast(StatusSnapshot, snapshot()), width=80, now=NOW)
    assert "last synced 3 s ago" in text and "last seen 2 h ago" in text and "retry in 5 s" in text


@pytest.mark.parametrize(
    "hostile",
    [
        "truck-1/requests/two\nlines.json",
        "truck-1/requests/\x1b[2J\x1b[31mred.json",
        "truck-1/requests/not-utf8-\udcff\udcfe.json",
        "truck-1/requests/" + "宽" * 60 + ".json",
        "truck-1/requests/\u202eevil-rtl.json",
    ],
)
def test_a_device_path_cannot_add_lines_drive_the_terminal_or_overflow(hostile: str) -> None:
    failure = dict(snapshot()["recent_failures"][0], local_path=hostile, last_error=f"cannot read {hostile}")
    text = render_status(cast(StatusSnapshot, snapshot(recent_failures=[failure])), width=80, now=NOW)
    text.encode("utf-8")  # printable: no lone surrogates left
    assert "\x1b" not in text and "\u202e" not in text
    lines = text.splitlines()
    assert not any(line.startswith("lines.json") for line in lines)
    assert max(cell_len(line) for line in lines) <= 80


def test_brackets_in_a_path_are_shown_as_they_are() -> None:
    failure = dict(snapshot()["recent_failures"][0], local_path="truck-1/requests/[red]markup[/red].json")
    assert "truck-1/requests/[red]markup[/red].json" in render_status(
        cast(StatusSnapshot, snapshot(recent_failures=[failure])), now=NOW
    )


def test_a_wider_terminal_uses_its_width() -> None:
    narrow = render_status(cast(StatusSnapshot, snapshot()), width=80, now=NOW).splitlines()
    wide = render_status(cast(StatusSnapshot, snapshot()), width=200, now=NOW).splitlines()
    assert len(wide) < len(narrow)
    assert max(len(line) for line in wide) <= 200
