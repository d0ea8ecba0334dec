"""Only a device's ``requests/`` folder is its activity: responses never open or extend its sessions."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

import pytest

from tests.support.daemon_process import DaemonProcess

pytestmark = pytest.mark.slow
Daemon = Callable[..., DaemonProcess]


async def test_a_processor_answer_in_responses_opens_no_session_for_a_silent_device(daemon: Daemon) -> None:
    d = daemon()
    d.start()
    await d.wait_started()
    answer = {"request_id": "00000000-0000-0000-0000-000000000001", "status": "completed", "result": {}}
    d.drop("kiosk-7/responses/late-answer.json", json.dumps(answer).encode())
    d.drop("kiosk-7/responses/notes/readme.txt", b"written by the back office")
    await d.wait_synced(2)
    sessions = await d.query("SELECT device_id FROM device_connections")
    assert [row["device_id"] for row in sessions] == []
    assert d.stop() == 0


async def test_the_daemons_own_response_does_not_move_the_devices_last_seen(daemon: Daemon) -> None:
    d = daemon()
    d.start()
    await d.wait_started()
    sent_at = time.time() - 3600  # the device's file is an hour old; the response is written now
    request = d.watch_root / "truck-3/requests/broken.json"
    request.parent.mkdir(parents=True)
    temp = request.with_name(".broken.json.part")
    temp.write_bytes(b"{not json")
    os.utime(temp, (sent_at, sent_at))
    temp.rename(request)
    await d.wait_synced(2)  # the request and the daemon's response
    sessions = await d.query("SELECT device_id, extract(epoch FROM last_seen_at) AS seen FROM device_connections")
    assert len(sessions) == 1 and sessions[0]["device_id"] == "truck-3"
    assert abs(float(sessions[0]["seen"]) - sent_at) < 1
    assert d.stop() == 0
