"""Requests through the running daemon: catalog loaded by the CLI, envelopes dropped, responses mirrored."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.daemon_process import DaemonProcess

pytestmark = pytest.mark.slow
Daemon = Callable[..., DaemonProcess]
CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog.json"
TECH = "rita.kowalski@northwind-fleet.example"


def envelope(kind: str, payload: dict[str, object], user: str = TECH, **extra: object) -> bytes:
    return json.dumps({"type": kind, "user": user, "payload": payload, **extra}).encode()


async def test_requests_are_answered_once_and_responses_are_mirrored_and_delivered(daemon: Daemon) -> None:
    d = daemon()
    loaded = d.command("load", str(CATALOG), "--json")
    assert json.loads(loaded.stdout)["users"] > 0
    again = d.command("load", str(CATALOG), "--json")
    assert again.returncode == 0
    d.start()
    await d.wait_started()
    request_id = str(uuid.uuid4())
    d.drop(
        "truck-n101/requests/2026/parts.json",
        envelope("get_parts", {"location": "North Depot"}, request_id=request_id, metadata={"app": "2.1"}),
    )
    d.drop("truck-n101/requests/2026/photo.jpg", b"\xff\xd8 not really a jpeg")
    d.drop("truck-n101/requests/2026/broken.json", b"{not json")
    response = d.watch_root / "truck-n101/responses/2026/parts.json"

    async def answered() -> bool:
        rows = await d.query("SELECT status FROM responses")
        return response.exists() and len(rows) == 2 and (d.mirror / "truck-n101/responses/2026/parts.json").exists()

    await d.wait_for(answered, 60, "responses written and mirrored")
    answer = json.loads(response.read_text())
    assert answer["request_id"] == request_id and answer["status"] == "completed"
    assert answer["result"]["location"] == "North Depot" and answer["result"]["items"]
    broken = json.loads((d.watch_root / "truck-n101/responses/2026/broken.json").read_text())
    assert broken["status"] == "failed" and broken["error"]["code"] == "invalid_json"
    assert (d.mirror / "truck-n101/requests/2026/broken.json").read_bytes() == b"{not json"

    async def delivered() -> bool:
        rows = await d.query("SELECT status FROM responses")
        return {row["status"] for row in rows} == {"delivered"}

    await d.wait_for(delivered, 60, "responses delivered")
    rows = await d.query(
        "SELECT r.request_type, r.status, count(c.id) AS files FROM requests r "
        "LEFT JOIN cloud_file_refs c ON c.request_id = r.id GROUP BY 1, 2 ORDER BY 1"
    )
    assert [(row["request_type"], row["status"], row["files"]) for row in rows] == [
        ("get_parts", "completed", 1),
        ("invalid", "failed", 1),
    ]
    status = json.loads(d.command("status", "--json").stdout)
    assert status["requests"]["completed"] == 1 and status["requests"]["failed"] == 1
    assert [device["device_id"] for device in status["devices"]] == ["truck-n101"]
    assert status["devices"][0]["online"] is True
    assert d.stop() == 0
    d.start()
    await d.wait_started()
    d.drop(
        "truck-n101/requests/2026/parts-again.json",
        envelope("get_parts", {"location": "North Depot"}, request_id=request_id),
    )

    async def duplicate_answered() -> bool:
        return (d.watch_root / "truck-n101/responses/2026/parts-again.json").exists()

    await d.wait_for(duplicate_answered, 60, "the duplicate's response")
    duplicate = json.loads((d.watch_root / "truck-n101/responses/2026/parts-again.json").read_text())
    assert duplicate["result"] == answer["result"]
    assert len(await d.query("SELECT 1 FROM requests WHERE request_type = 'get_parts'")) == 1
    assert d.stop() == 0


async def test_load_reports_a_data_error_and_exits_1(daemon: Daemon, tmp_path: Path) -> None:
    d = daemon()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"users": [{"email": "x@example.com"}]}))
    result = d.command("load", str(bad), check=False)
    assert result.returncode == 1
    assert "name" in result.stderr


async def test_a_strict_daemon_answers_only_devices_acting_for_their_bound_users(daemon: Daemon) -> None:
    d = daemon(device_binding="strict")
    d.command("load", str(CATALOG))  # binds north-depot-scanner to sam.becker and rita.kowalski
    d.start()
    await d.wait_started()
    shared_id = str(uuid.uuid4())
    drops = {
        "north-depot-scanner/requests/own.json": envelope(
            "get_parts", {"location": "North Depot"}, user="sam.becker@northwind-fleet.example", request_id=shared_id
        ),
        "north-depot-scanner/requests/admin.json": envelope(
            "get_parts", {"location": "North Depot"}, user="it.admin@northwind-fleet.example"
        ),
        "truck-n101/requests/unlisted.json": envelope("get_parts", {"location": "North Depot"}),
        "south-depot-scanner/requests/reused.json": envelope(
            "get_parts", {"location": "South Depot"}, user="ana.silva@northwind-fleet.example", request_id=shared_id
        ),
    }
    d.drop("north-depot-scanner/requests/own.json", drops.pop("north-depot-scanner/requests/own.json"))

    def response(path: str) -> Path:
        return d.watch_root / path.replace("/requests/", "/responses/")

    async def first_answered() -> bool:
        return response("north-depot-scanner/requests/own.json").exists()

    await d.wait_for(first_answered, 60, "the bound device's answer")
    for path, data in drops.items():
        d.drop(path, data)

    async def answered() -> bool:
        return all(response(path).exists() for path in drops)

    await d.wait_for(answered, 60, "every answer")
    outcomes = {}
    for path in ["north-depot-scanner/requests/own.json", *drops]:
        document = json.loads(response(path).read_text())
        outcomes[path.split("/")[-1]] = document["status"] if "error" not in document else document["error"]["code"]
    assert outcomes == {
        "own.json": "completed",
        "admin.json": "forbidden",
        "unlisted.json": "forbidden",
        "reused.json": "conflict",
    }
    reused = json.loads(response("south-depot-scanner/requests/reused.json").read_text())
    assert reused["request_id"] == shared_id and "North Depot" not in json.dumps(reused)
    assert d.stop() == 0
