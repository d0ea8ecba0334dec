"""Envelopes and names PostgreSQL cannot store, through the running daemon: each is answered or
skipped on its own, and the device's next request is applied as usual."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import pytest

from tests.support.daemon_process import DaemonProcess
from tests.support.domain import TECH, start_with_the_example_fleet

pytestmark = pytest.mark.slow
Daemon = Callable[..., DaemonProcess]
GET_PARTS = '"type": "get_parts", "user": "' + TECH + '", "payload": {"location": "North Depot"}'

# Written as JSON text on purpose: json.dumps would refuse some of these, a device need not.
HOSTILE = {
    "surrogate-in-metadata": "{" + GET_PARTS + ', "metadata": {"note": "\\ud800"}}',
    "nul-in-metadata": "{" + GET_PARTS + ', "metadata": {"note": "a\\u0000b"}}',
    "surrogate-in-a-key": "{" + GET_PARTS + ', "metadata": {"\\udfff": "x"}}',
    "nul-in-the-user": '{"type": "get_parts", "user": "rita\\u0000@x.example", "payload": {}}',
    "surrogate-deep-in-the-payload": (
        '{"type": "diagnose", "user": "' + TECH + '", "payload": {"a": [[{"b": "\\udc80"}]]}}'
    ),
    "nul-in-the-type": '{"type": "get\\u0000parts", "user": "' + TECH + '", "payload": {}}',
}


async def test_envelopes_postgresql_cannot_store_are_answered_invalid_json_and_the_next_request_is_applied(
    daemon: Daemon,
) -> None:
    d = daemon()
    await start_with_the_example_fleet(d)
    for name, text in HOSTILE.items():
        d.drop(f"truck-n101/requests/{name}.json", text.encode())
    d.drop("truck-n101/requests/zz-next.json", ("{" + GET_PARTS + "}").encode(), old=False)
    responses = d.watch_root / "truck-n101/responses"

    async def all_answered() -> bool:
        return all((responses / f"{name}.json").exists() for name in [*HOSTILE, "zz-next"])

    await d.wait_for(all_answered, 60, "every envelope answered")
    for name in HOSTILE:
        answer = json.loads((responses / f"{name}.json").read_text())
        assert (answer["status"], answer["error"]["code"]) == ("failed", "invalid_json"), name
    following = json.loads((responses / "zz-next.json").read_text())
    assert following["status"] == "completed" and following["result"]["location"] == "North Depot"
    rows = await d.query("SELECT request_type, status, error_code FROM requests ORDER BY local_path")
    assert [tuple(row) for row in rows] == [("invalid", "failed", "invalid_json")] * len(HOSTILE) + [
        ("get_parts", "completed", None)
    ]
    assert "database unreachable" not in d.log()
    assert d.stop() == 0


async def test_a_file_name_that_is_not_utf8_never_stalls_recording_even_after_a_restart(daemon: Daemon) -> None:
    d = daemon()
    requests = d.watch_root / "truck-n101" / "requests"
    requests.mkdir(parents=True)
    bad = os.fsencode(requests) + b"/bad-\xff\xfe-name.bin"
    with open(bad, "wb") as writer:
        writer.write(b"a name PostgreSQL cannot store")
    stamp = os.stat(bad).st_mtime - 5
    os.utime(bad, (stamp, stamp))
    for index in range(20):
        d.drop(f"truck-n101/requests/good-{index}.bin", f"file {index}".encode())
    d.start()
    await d.wait_started()
    await d.wait_synced(20)
    assert d.stop() == 0

    d.start()  # the reconcile scan after a restart meets the same name again
    await d.wait_started()
    d.drop("truck-n101/requests/after-restart.bin", b"still flowing", old=False)
    await d.wait_synced(21)
    assert (d.mirror / "truck-n101/requests/after-restart.bin").read_bytes() == b"still flowing"
    assert "database unreachable" not in d.log()
    assert d.stop() == 0


async def test_a_processor_answer_postgresql_cannot_store_is_refused_and_requests_keep_flowing(
    daemon: Daemon,
) -> None:
    d = daemon()
    await start_with_the_example_fleet(d)
    answer = '{"request_id": "00000000-0000-0000-0000-000000000001", "status": "completed", "result": "\\ud800"}'
    d.drop("truck-n101/responses/from-a-processor.json", answer.encode())
    d.drop("truck-n101/requests/after.json", ("{" + GET_PARTS + "}").encode(), old=False)
    response = d.watch_root / "truck-n101/responses/after.json"

    async def answered() -> bool:
        return response.exists() and "from-a-processor.json not ingested" in d.log()

    await d.wait_for(answered, 60, "the processor's answer refused and the request answered")
    assert json.loads(response.read_text())["status"] == "completed"
    assert "database unreachable" not in d.log()
    assert d.stop() == 0
