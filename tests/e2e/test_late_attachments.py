"""An attachment that settles after its envelope is linked to the request when it is recorded."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import pytest

from tests.support.daemon_process import DaemonProcess
from tests.support.domain import TECH, start_with_the_example_fleet

pytestmark = pytest.mark.slow
Daemon = Callable[..., DaemonProcess]


def asking_for_parts(request_id: str, attachment: str) -> bytes:
    """A technician's parts request for North Depot naming one attachment."""
    envelope = {
        "type": "get_parts",
        "user": TECH,
        "request_id": request_id,
        "payload": {"location": "North Depot"},
        "attachments": [attachment],
    }
    return json.dumps(envelope).encode()


async def test_a_photo_arriving_after_its_envelope_and_its_later_version_are_linked(daemon: Daemon) -> None:
    d = daemon()
    await start_with_the_example_fleet(d)
    request_id = str(uuid.uuid4())
    d.drop("truck-n101/requests/2026/parts.json", asking_for_parts(request_id, "photos/brake.jpg"))

    async def answered() -> bool:
        rows = await d.query("SELECT status FROM requests WHERE id = $1", uuid.UUID(request_id))
        return bool(rows) and rows[0]["status"] == "completed"

    await d.wait_for(answered, 60, "the request answered before its photo arrives")
    d.drop("truck-n101/requests/photos/brake.jpg", b"\xff\xd8 the large photo")
    # The same name under another device is that device's file: never linked to this request.
    d.drop("truck-n102/requests/photos/brake.jpg", b"\xff\xd8 someone else's photo")

    async def linked(content_count: int) -> bool:
        rows = await d.query(
            "SELECT request_id FROM cloud_file_refs WHERE local_path = 'truck-n101/requests/photos/brake.jpg'"
        )
        return len(rows) == content_count and all(str(row["request_id"]) == request_id for row in rows)

    await d.wait_for(lambda: linked(1), 60, "the late photo linked")
    d.drop("truck-n101/requests/photos/brake.jpg", b"\xff\xd8 the photo, retaken")
    await d.wait_for(lambda: linked(2), 60, "the later version linked as well")
    await d.wait_synced(5)
    other = await d.query(
        "SELECT request_id FROM cloud_file_refs WHERE local_path = 'truck-n102/requests/photos/brake.jpg'"
    )
    assert [row["request_id"] for row in other] == [None]
    assert d.stop() == 0


async def test_an_attachment_recorded_before_its_envelope_is_still_linked(daemon: Daemon) -> None:
    d = daemon()
    await start_with_the_example_fleet(d)
    d.drop("truck-n101/requests/2026/note.txt", b"recorded first")
    await d.wait_synced(1)
    request_id = str(uuid.uuid4())
    # The attachment is named relative to the envelope's own folder.
    d.drop("truck-n101/requests/2026/parts.json", asking_for_parts(request_id, "note.txt"))

    async def linked() -> bool:
        rows = await d.query("SELECT request_id FROM cloud_file_refs WHERE local_path LIKE '%note.txt'")
        return bool(rows) and all(str(row["request_id"]) == request_id for row in rows)

    await d.wait_for(linked, 60, "the earlier attachment linked by the envelope")
    assert d.stop() == 0


async def test_an_attachment_left_unlinked_by_a_crash_is_linked_at_the_next_start(daemon: Daemon) -> None:
    d = daemon()
    await start_with_the_example_fleet(d)
    request_id = str(uuid.uuid4())
    d.drop("truck-n101/requests/order.json", asking_for_parts(request_id, "scan.pdf"))
    await d.wait_synced(2)  # the envelope and its response
    assert d.stop() == 0
    # Recorded by a daemon killed before its linker ran: the row exists, its link does not.
    await d.query(
        "INSERT INTO cloud_file_refs (target, cloud_provider, device_id, local_path, file_type, content_sha256, "
        "file_size_bytes, file_mtime_ns) VALUES ('local', 'local', 'truck-n101', 'truck-n101/requests/scan.pdf', "
        "'attachment', repeat('b', 64), 1, 1)"
    )
    d.start()
    await d.wait_started()

    async def linked() -> bool:
        rows = await d.query("SELECT request_id FROM cloud_file_refs WHERE local_path = 'truck-n101/requests/scan.pdf'")
        return str(rows[0]["request_id"]) == request_id

    await d.wait_for(linked, 60, "the crash-orphaned attachment linked")
    assert d.stop() == 0
