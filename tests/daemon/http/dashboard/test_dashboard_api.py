"""The dashboard's shell and JSON endpoints against a real database: filters, grouping, details, tokens."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from tests.support.dashboard import TOKEN, Dashboard, Serve, add_ref

SCRIPT_NAME = 'truck-1/requests/<script>alert("x")</script>.txt'


async def test_shell_is_public_and_holds_no_data_while_its_json_needs_the_token(
    serve: Serve, db: asyncpg.Connection
) -> None:
    await add_ref(db, SCRIPT_NAME)
    dashboard = await serve(reads_need_token=True)
    async with dashboard.http.get(dashboard.base + "/") as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        shell = await response.text()
    for text in ("Overview", "Devices", "Files", "Failures", "Requests", 'for="token">Token<'):
        assert text in shell
    assert TOKEN not in shell and "truck-1" not in shell
    script = await dashboard.get("/static/dashboard.js")
    assert "import" in script and TOKEN not in script
    await dashboard.get("/static/nope.js", expect=404)
    await dashboard.get("/static/..%2Fhttp_api.py", expect=404)
    for path in ("/api/dashboard/overview", "/api/dashboard/files", "/api/dashboard/failures", "/status"):
        await dashboard.get(path, token="", expect=401)
        await dashboard.get(path, token="wrong", expect=401)
    found = await dashboard.get("/api/dashboard/files", token=TOKEN)
    assert [row["local_path"] for row in found["files"]] == [SCRIPT_NAME]


async def test_with_a_token_set_every_data_endpoint_needs_it_on_loopback_too(
    serve: Serve, db: asyncpg.Connection
) -> None:
    await add_ref(db, SCRIPT_NAME)
    dashboard = await serve(reads_need_token=False)  # a loopback bind
    await dashboard.get("/", token="")  # the shell and its assets hold no data
    await dashboard.get("/static/dashboard.js", token="")
    pages = ("overview", "throughput", "devices", "files", "failures", "requests", "requests/" + str(uuid.uuid4()))
    for page in pages:
        for token in ("", "wrong", TOKEN + "x"):
            body = await dashboard.get(f"/api/dashboard/{page}", token=token, expect=401)
            assert "truck-1" not in json.dumps(body)
    await dashboard.get("/status", token="", expect=401)
    await dashboard.get("/healthz", token="")
    await dashboard.get("/metrics", token="")
    found = await dashboard.get("/api/dashboard/files")
    assert [row["local_path"] for row in found["files"]] == [SCRIPT_NAME]
    headers = {"Host": "evil.example", "Authorization": f"Bearer {TOKEN}"}
    async with dashboard.http.get(dashboard.base + "/api/dashboard/files", headers=headers) as response:
        assert response.status == 200  # whoever holds the token may use any name


async def test_reads_are_open_on_loopback_without_a_token_configured(serve: Serve) -> None:
    dashboard = await serve(reads_need_token=False, token=None)
    for page in ("overview", "throughput", "devices", "files", "failures", "requests"):
        body = await dashboard.get(f"/api/dashboard/{page}")
        assert "now" in body


async def test_files_search_by_path_substring_device_status_and_target(serve: Serve, db: asyncpg.Connection) -> None:
    script = await add_ref(db, SCRIPT_NAME, status="synced")
    soon = datetime.now(UTC) + timedelta(minutes=1)
    await add_ref(db, SCRIPT_NAME, target="offsite", status="failed", last_error="boom", next_attempt_at=soon)
    percent = await add_ref(db, "truck-1/requests/100%_done.txt", status="pending")
    await add_ref(db, "truck-1/requests/100x_done.txt", status="pending")
    gave_up = await add_ref(db, "van-7/requests/a.txt", device="van-7", status="failed", last_error="no")
    await add_ref(db, "van-7/requests/b.txt", device="van-7", status="failed", last_error="later", next_attempt_at=soon)
    dashboard = await serve()

    async def paths(query: str) -> list[str]:
        body = await dashboard.get("/api/dashboard/files?" + query)
        return sorted(f"{row['target']}:{row['local_path']}" for row in body["files"])

    assert await paths("path=%3Cscript%3E") == [f"mirror:{SCRIPT_NAME}", f"offsite:{SCRIPT_NAME}"]
    assert await paths("path=%3CSCRIPT") == [f"mirror:{SCRIPT_NAME}", f"offsite:{SCRIPT_NAME}"]
    assert await paths("path=100%25_") == ["mirror:truck-1/requests/100%_done.txt"]  # % and _ are literal
    assert await paths("device=van-7") == ["mirror:van-7/requests/a.txt", "mirror:van-7/requests/b.txt"]
    assert await paths("status=gave_up") == ["mirror:van-7/requests/a.txt"]
    assert await paths("status=failed&target=offsite") == [f"offsite:{SCRIPT_NAME}"]
    assert await paths("path=script&status=synced") == [f"mirror:{SCRIPT_NAME}"]
    assert await paths("path=nothing-like-this") == []
    body = await dashboard.get("/api/dashboard/files?status=bogus", expect=400)
    assert "status must be one of" in body["error"]
    everything = await dashboard.get("/api/dashboard/files")
    assert everything["targets"] == ["mirror", "offsite"]
    ids = {row["ref_id"] for row in everything["files"]}
    assert {str(script), str(percent), str(gave_up)} <= ids
    limited = await dashboard.get("/api/dashboard/files?limit=2")
    assert len(limited["files"]) == 2 and limited["truncated"] is True


async def test_failures_are_grouped_by_target_and_error_and_a_group_retry_requeues_them(
    serve: Serve, db: asyncpg.Connection
) -> None:
    a = await add_ref(db, "truck-1/requests/a.txt", status="failed", last_error="NotADirectoryError: '/m/a.txt'")
    b = await add_ref(db, "truck-1/requests/b.txt", status="failed", last_error="NotADirectoryError: '/m/b.txt'")
    c = await add_ref(db, "truck-1/requests/c.txt", target="offsite", status="failed", last_error="HTTP 503 from S3")
    e = await add_ref(db, "truck-1/requests/e.txt", target="offsite", status="failed", last_error="HTTP 503 from S3")
    f = await add_ref(db, "truck-1/requests/f.txt", status="failed", last_error="Not a directory (/m/truck-1/requests)")
    g = await add_ref(
        db, "truck-1/requests/g.txt", status="failed", last_error="Not a directory (/m/truck-1/responses)"
    )
    await add_ref(db, "truck-1/requests/d.txt", status="synced")
    dashboard = await serve()
    body = await dashboard.get("/api/dashboard/failures")
    assert body["total"] == 6
    groups = {(g["target"], g["error_kind"]): g for g in body["groups"]}
    assert set(groups) == {
        ("mirror", "NotADirectoryError: …"),
        ("mirror", "Not a directory (…)"),
        ("offsite", "HTTP # from S3"),
    }
    assert sorted(groups[("mirror", "Not a directory (…)")]["ref_ids"]) == sorted([str(f), str(g)])
    mirror = groups[("mirror", "NotADirectoryError: …")]
    assert sorted(mirror["ref_ids"]) == sorted([str(a), str(b)])
    assert mirror["failed"] == 2 and mirror["gave_up"] == 2
    assert {row["local_path"] for row in mirror["rows"]} == {"truck-1/requests/a.txt", "truck-1/requests/b.txt"}
    assert {row["ref_id"] for row in groups[("offsite", "HTTP # from S3")]["rows"]} == {str(c), str(e)}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with dashboard.http.post(
        dashboard.base + "/api/retry", json={"ref_ids": mirror["ref_ids"]}, headers=headers
    ) as response:
        assert response.status == 200 and (await response.json()) == {"requeued": 2}
    after = await dashboard.get("/api/dashboard/failures")
    assert sorted((g["target"], g["failed"]) for g in after["groups"]) == [("mirror", 2), ("offsite", 2)]


async def test_overview_gives_each_target_a_light_and_counts_uploads_per_minute(
    serve: Serve, db: asyncpg.Connection
) -> None:
    now = datetime.now(UTC)
    for i in range(3):
        await add_ref(db, f"truck-1/requests/now{i}.txt", status="synced", uploaded_at=now)
    await add_ref(db, "truck-1/requests/old.txt", status="synced", uploaded_at=now - timedelta(minutes=10))
    await add_ref(db, "truck-1/requests/ancient.txt", status="synced", uploaded_at=now - timedelta(hours=3))
    await add_ref(db, "truck-1/requests/x.txt", target="offsite", status="failed", last_error="no")
    await db.execute(
        "INSERT INTO instances (host, pid, version, watch_root, last_heartbeat) VALUES "
        "('alive', 1, '0.1.0', '/srv/a', now()), ('silent', 2, '0.1.0', '/srv/b', now() - interval '5 minutes')"
    )
    dashboard = await serve()
    overview = await dashboard.get("/api/dashboard/overview")
    targets = {t["name"]: t for t in overview["targets"]}
    assert targets["mirror"]["synced"] == 5 and targets["mirror"]["light"] == "green"
    assert targets["offsite"]["gave_up"] == 1 and targets["offsite"]["light"] == "red"
    instances = {i["host"]: i for i in overview["instances"]}
    assert instances["alive"]["stale"] is False and instances["silent"]["stale"] is True
    assert instances["alive"]["uptime_seconds"] >= 0
    rate = await dashboard.get("/api/dashboard/throughput")
    assert len(rate["minutes"]) == 60
    series = {s["name"]: s for s in rate["targets"]}
    assert series["mirror"]["total"] == 4 and series["mirror"]["counts"][-1] in (3, 0)
    assert sum(series["mirror"]["counts"][-2:]) == 3  # this minute (or the last, at a minute's turn)
    assert series["offsite"]["total"] == 0


async def test_devices_show_files_and_requests_today_and_open_session(serve: Serve, db: asyncpg.Connection) -> None:
    await add_ref(db, "truck-1/requests/a.txt")
    await add_ref(db, "truck-1/requests/a.txt", target="offsite")  # same file on another target: one file
    await add_ref(db, "truck-1/requests/b.txt", created_at=datetime.now(UTC) - timedelta(days=3))
    await db.execute(
        "INSERT INTO device_connections (device_id, connected_at, last_seen_at) "
        "VALUES ('truck-1', now() - interval '10 minutes', now())"
    )
    await db.execute(
        "INSERT INTO device_connections (device_id, connected_at, last_seen_at, disconnected_at) "
        "VALUES ('van-7', now() - interval '2 hours', now() - interval '1 hour', now() - interval '1 hour')"
    )
    await db.execute(
        "INSERT INTO requests (device_id, request_type, status) VALUES ('truck-1', 'get_parts', 'completed')"
    )
    dashboard = await serve()
    body = await dashboard.get("/api/dashboard/devices")
    devices = {d["device_id"]: d for d in body["devices"]}
    truck = devices["truck-1"]
    assert truck["online"] is True and truck["files_today"] == 1
    assert truck["requests_today"] == 1
    assert 590 <= truck["open_session_seconds"] <= 700
    van = devices["van-7"]
    assert van["online"] is False and van["open_session_seconds"] is None and van["files_today"] == 0


async def _seed_order_request(db: asyncpg.Connection, envelope: bytes, local_path: str) -> dict[str, uuid.UUID]:
    """A create_order request as ingestion leaves it: one transaction, audited by the triggers."""
    request_id = uuid.uuid4()
    async with db.transaction():
        user = await db.fetchval("INSERT INTO users (email, name) VALUES ('ana@example.com', 'Ana') RETURNING id")
        dept = await db.fetchval("INSERT INTO departments (name) VALUES ('Fleet') RETURNING id")
        location = await db.fetchval(
            "INSERT INTO locations (name, dept_id, location_type) VALUES ('North Depot', $1, 'depot') RETURNING id",
            dept,
        )
        await db.execute(
            "INSERT INTO requests (id, device_id, request_type, status, payload_hash, created_by, local_path) "
            "VALUES ($1, 'truck-1', 'create_order', 'completed', $2, $3, $4)",
            request_id,
            hashlib.sha256(envelope).hexdigest(),
            user,
            local_path,
        )
        await db.execute(
            "INSERT INTO request_metadata (request_id, key, value) VALUES ($1, 'app', '<b>2.1</b>')", request_id
        )
        order = await db.fetchval(
            "INSERT INTO orders (request_id, location_id, status, total, created_by) "
            "VALUES ($1, $2, 'pending-approval', 12.5, $3) RETURNING id",
            request_id,
            location,
            user,
        )
        await db.execute(
            "INSERT INTO order_history (order_id, event_type, event_description, user_id) "
            "VALUES ($1, 'created', 'order created', $2)",
            order,
            user,
        )
        content = {"request_id": str(request_id), "status": "completed", "result": {"order_id": str(order)}}
        response = await db.fetchval(
            "INSERT INTO responses (request_id, status, content, local_path) VALUES ($1, 'ready', $2::jsonb, $3) "
            "RETURNING id",
            request_id,
            json.dumps(content),
            local_path.replace("/requests/", "/responses/"),
        )
    return {"request": request_id, "order": order, "response": response, "user": user}


async def test_request_page_shows_envelope_metadata_response_audit_rows_and_order_history(
    serve: Serve, db: asyncpg.Connection
) -> None:
    dashboard = await serve()
    local_path = "truck-1/requests/orders/o1.json"
    envelope = json.dumps({"type": "create_order", "user": "ana@example.com", "payload": {"location": "North Depot"}})
    (dashboard.settings.watch_path / local_path).parent.mkdir(parents=True)
    (dashboard.settings.watch_path / local_path).write_text(envelope)
    ids = await _seed_order_request(db, envelope.encode(), local_path)
    request_ref = await add_ref(
        db, local_path, file_type="request", request_id=ids["request"], content=envelope.encode()
    )
    await add_ref(db, local_path, target="offsite", file_type="request", request_id=ids["request"], content=b"x")
    response_ref = await add_ref(
        db, local_path.replace("/requests/", "/responses/"), file_type="response", response_id=ids["response"]
    )
    await db.execute("UPDATE orders SET status = 'approved' WHERE id = $1", ids["order"])  # a later change
    await db.execute("INSERT INTO users (email, name) VALUES ('other@example.com', 'Other')")  # unrelated

    body = await dashboard.get(f"/api/dashboard/requests/{ids['request']}")
    assert body["request"]["request_type"] == "create_order" and body["request"]["user_email"] == "ana@example.com"
    assert body["metadata"] == {"app": "<b>2.1</b>"}
    assert body["envelope"]["json"]["payload"] == {"location": "North Depot"} and body["envelope"]["text"] == envelope
    assert body["response"]["content"]["result"]["order_id"] == str(ids["order"])
    assert {row["ref_id"] for row in body["files"]} >= {str(request_ref), str(response_ref)}
    assert [o["order_id"] for o in body["orders"]] == [str(ids["order"])]
    assert [(e["event_type"], e["user_email"]) for e in body["order_history"]] == [("created", "ana@example.com")]
    audited = {(a["table_name"], a["operation"]) for a in body["audit"]}
    assert {("requests", "INSERT"), ("orders", "INSERT"), ("responses", "INSERT"), ("orders", "UPDATE")} <= audited
    assert not any(a["new_values"] and a["new_values"].get("email") == "other@example.com" for a in body["audit"])
    update = next(a for a in body["audit"] if a["operation"] == "UPDATE")
    assert update["old_values"]["status"] == "pending-approval" and update["new_values"]["status"] == "approved"

    listed = await dashboard.get("/api/dashboard/requests?type=create_order")
    assert [r["request_id"] for r in listed["requests"]] == [str(ids["request"])]
    assert listed["summary"] == [{"request_type": "create_order", "counts": {"completed": 1}}]
    assert (await dashboard.get("/api/dashboard/requests?status=failed"))["requests"] == []
    await dashboard.get("/api/dashboard/requests?status=bogus", expect=400)

    detail = await dashboard.get(f"/api/dashboard/files/{request_ref}")
    assert {row["target"] for row in detail["rows"]} == {"mirror", "offsite"}
    assert detail["request"]["request_id"] == str(ids["request"])
    assert detail["response"]["content"]["status"] == "completed"
    from_response = await dashboard.get(f"/api/dashboard/files/{response_ref}")
    assert from_response["request"]["request_id"] == str(ids["request"])
    await dashboard.get(f"/api/dashboard/files/{uuid.uuid4()}", expect=404)
    await dashboard.get("/api/dashboard/files/not-a-uuid", expect=404)
    await dashboard.get(f"/api/dashboard/requests/{uuid.uuid4()}", expect=404)


async def assert_envelope_withheld(dashboard: Dashboard, db: asyncpg.Connection, local_path: str) -> None:
    """A failed request recorded at ``local_path``: the dashboard shows no text of its envelope."""
    request_id = await db.fetchval(
        "INSERT INTO requests (device_id, request_type, status, local_path) "
        "VALUES ('truck-1', 'invalid', 'failed', $1) RETURNING id",
        local_path,
    )
    await add_ref(db, local_path, file_type="request", request_id=request_id)
    body = await dashboard.get(f"/api/dashboard/requests/{request_id}")
    assert "text" not in body["envelope"] and "no longer" in body["envelope"]["error"]
    assert "hunter2" not in json.dumps(body)


async def test_envelope_is_never_read_from_outside_the_daemons_folders(serve: Serve, db: asyncpg.Connection) -> None:
    dashboard = await serve()
    secret = dashboard.settings.watch_path.parent / "secret.json"
    secret.write_text('{"password": "hunter2"}')
    await assert_envelope_withheld(dashboard, db, "../secret.json")


async def test_json_refuses_a_foreign_host_name_without_the_token(serve: Serve, db: asyncpg.Connection) -> None:
    """DNS rebinding: a page whose domain now points at 127.0.0.1 must not read token-less data."""
    await add_ref(db, SCRIPT_NAME)
    dashboard = await serve(reads_need_token=False, token=None)
    url = dashboard.base + "/api/dashboard/files"
    port = dashboard.base.rsplit(":", 1)[1]
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.nip.example"):
        async with dashboard.http.get(url, headers={"Host": host}) as response:
            assert response.status == 403, host
            assert "truck-1" not in await response.text()
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "localhost"):
        async with dashboard.http.get(url, headers={"Host": host}) as response:
            assert response.status == 200, host
    async with dashboard.http.get(dashboard.base + "/", headers={"Host": "evil.example"}) as response:
        assert response.status == 200  # the shell holds no data


async def test_a_large_envelope_is_shown_cut(serve: Serve, db: asyncpg.Connection) -> None:
    dashboard = await serve()
    local_path = "truck-1/requests/big.json"
    big = json.dumps({"type": "x", "user": "u", "payload": {"blob": "a" * 400_000}})
    (dashboard.settings.watch_path / "truck-1/requests").mkdir(parents=True)
    (dashboard.settings.watch_path / local_path).write_text(big)
    request_id = await db.fetchval(
        "INSERT INTO requests (device_id, request_type, status, local_path) "
        "VALUES ('truck-1', 'x', 'pending', $1) RETURNING id",
        local_path,
    )
    await add_ref(db, local_path, file_type="request", request_id=request_id)
    envelope = (await dashboard.get(f"/api/dashboard/requests/{request_id}"))["envelope"]
    assert envelope["truncated"] is True and envelope["size"] == len(big) and envelope["json"] is None
    assert big.startswith(envelope["text"]) and len(envelope["text"]) == 256 * 1024


async def test_devices_show_how_many_of_their_files_were_skipped(serve: Serve, db: asyncpg.Connection) -> None:
    await add_ref(db, "truck-1/requests/a.txt")
    await db.execute("INSERT INTO device_skipped_files (device_id, skipped) VALUES ('truck-1', 3), ('van-7', 1)")
    dashboard = await serve()
    body = await dashboard.get("/api/dashboard/devices")
    devices = {d["device_id"]: d for d in body["devices"]}
    assert devices["truck-1"]["skipped"] == 3
    assert devices["van-7"]["skipped"] == 1  # a device whose only files were skipped is listed too


async def test_envelope_behind_a_folder_swapped_for_a_link_is_not_shown(serve: Serve, db: asyncpg.Connection) -> None:
    dashboard = await serve()
    outside = dashboard.settings.watch_path.parent / "outside"
    outside.mkdir()
    (outside / "o1.json").write_text('{"password": "hunter2"}')
    (dashboard.settings.watch_path / "truck-1/requests").mkdir(parents=True)
    (dashboard.settings.watch_path / "truck-1/requests/orders").symlink_to(outside)
    await assert_envelope_withheld(dashboard, db, "truck-1/requests/orders/o1.json")
