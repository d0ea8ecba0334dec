"""The HTTP app through a real aiohttp client against a real bound port."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from cloudwatcher.daemon.http.app import (
    BindError,
    bound_port,
    build_http_app,
    is_loopback_bind,
    mark_public,
    parse_bind,
    start_http_server,
)
from cloudwatcher.daemon.ops import metrics
from cloudwatcher.daemon.ops.status import StatusSnapshot
from tests.support.http_app import start_app

TOKEN = "s3cret-token-value"


@dataclass
class FakeDaemon:
    """The callables the daemon passes in, recording how they were called."""

    healthy: tuple[bool, str] = (True, "")
    retried: list[list[str] | None] = field(default_factory=list)

    async def status(self) -> StatusSnapshot:
        # A partial snapshot with raw database values: the app must still serialise it.
        partial = {
            "targets": [{"name": "local", "pending": 2, "last_synced_at": datetime(2026, 1, 2, tzinfo=UTC)}],
            "recent_failures": [{"ref_id": uuid.UUID(int=1)}],
        }
        return cast(StatusSnapshot, partial)

    async def health(self) -> tuple[bool, str]:
        return self.healthy

    async def retry(self, ref_ids: list[str] | None) -> int:
        self.retried.append(ref_ids)
        return 3 if ref_ids is None else len(ref_ids)


Serve = Callable[..., Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start the app on 127.0.0.1:0; returns its base URL."""
    runners = []

    async def start(daemon: FakeDaemon, *, token: str | None, reads: bool = False, bind: str = "127.0.0.1:0") -> str:
        runner = await start_app(daemon, token=token, reads_need_token=reads, bind=bind)
        runners.append(runner)
        host = parse_bind(bind)[0]
        host = f"[{host}]" if host and ":" in host else host
        return f"http://{host}:{bound_port(runner)}"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_status_returns_the_snapshot_as_json(serve: Serve, client: aiohttp.ClientSession) -> None:
    base = await serve(FakeDaemon(), token=None)
    async with client.get(f"{base}/status") as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        body = await response.json()
    assert body["targets"][0]["pending"] == 2
    assert body["targets"][0]["last_synced_at"] == "2026-01-02T00:00:00+00:00"
    assert body["recent_failures"][0]["ref_id"] == str(uuid.UUID(int=1))


async def test_healthz_is_200_when_healthy_and_503_with_reason_otherwise(
    serve: Serve, client: aiohttp.ClientSession
) -> None:
    daemon = FakeDaemon()
    base = await serve(daemon, token=None)
    async with client.get(f"{base}/healthz") as response:
        assert (response.status, await response.json()) == (200, {"ok": True})
    daemon.healthy = (False, "database unreachable for 12 s")
    async with client.get(f"{base}/healthz") as response:
        assert response.status == 503
        assert await response.json() == {"ok": False, "reason": "database unreachable for 12 s"}


async def test_metrics_are_prometheus_text_that_the_parser_reads(serve: Serve, client: aiohttp.ClientSession) -> None:
    target = f"t-{uuid.uuid4().hex[:8]}"
    metrics.record_upload(target, "local", "synced", 100, 0.01)
    metrics.set_backlog(target, {"pending": 4}, 12.0, 0)
    base = await serve(FakeDaemon(), token=None)
    async with client.get(f"{base}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    values = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert values[("cloudwatcher_backlog", (("status", "pending"), ("target", target)))] == 4
    key = ("cloudwatcher_upload_bytes_total", (("provider", "local"), ("target", target)))
    assert values[key] == 100


async def test_retry_without_a_token_is_401_and_with_a_wrong_one_too(
    serve: Serve, client: aiohttp.ClientSession
) -> None:
    daemon = FakeDaemon()
    base = await serve(daemon, token=TOKEN)
    async with client.post(f"{base}/api/retry", json={"all": True}) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    async with client.post(f"{base}/api/retry", json={"all": True}, headers=bearer(TOKEN + "x")) as response:
        assert response.status == 401
    async with client.post(f"{base}/api/retry", json={"all": True}, headers={"Authorization": TOKEN}) as response:
        assert response.status == 401
    assert daemon.retried == []


async def test_retry_with_the_token_requeues_all_or_the_given_rows(serve: Serve, client: aiohttp.ClientSession) -> None:
    daemon = FakeDaemon()
    base = await serve(daemon, token=TOKEN)
    async with client.post(f"{base}/api/retry", json={"all": True}, headers=bearer(TOKEN)) as response:
        assert response.status == 200
        assert await response.json() == {"requeued": 3}
    ids = [str(uuid.uuid4()), str(uuid.uuid4()).upper()]
    async with client.post(f"{base}/api/retry", json={"ref_ids": ids}, headers=bearer(TOKEN)) as response:
        assert response.status == 200
        assert await response.json() == {"requeued": 2}
    assert daemon.retried == [None, [ids[0], ids[1].lower()]]


async def test_retry_is_refused_with_401_when_no_token_is_configured(
    serve: Serve, client: aiohttp.ClientSession
) -> None:
    daemon = FakeDaemon()
    base = await serve(daemon, token=None)
    async with client.post(f"{base}/api/retry", json={"all": True}, headers=bearer("anything")) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "http_token" in (await response.json())["error"]
    async with client.post(f"{base}/api/retry", json={"all": True}, headers={"Host": "attacker.example"}) as response:
        assert response.status == 401
    assert daemon.retried == []


@pytest.mark.parametrize(
    "body",
    [
        [],
        {},
        {"all": False},
        {"all": "yes"},
        {"ref_ids": []},
        {"ref_ids": "abc"},
        {"ref_ids": ["not-a-uuid"]},
        {"ref_ids": [42]},
        {"ref_ids": [str(uuid.uuid4())], "all": True},
        {"ref_id": [str(uuid.uuid4())]},
    ],
)
async def test_retry_with_a_bad_body_is_400(serve: Serve, client: aiohttp.ClientSession, body: object) -> None:
    daemon = FakeDaemon()
    base = await serve(daemon, token=TOKEN)
    async with client.post(f"{base}/api/retry", json=body, headers=bearer(TOKEN)) as response:
        assert response.status == 400
        assert "error" in await response.json()
    assert daemon.retried == []


async def test_retry_with_invalid_json_is_400(serve: Serve, client: aiohttp.ClientSession) -> None:
    base = await serve(FakeDaemon(), token=TOKEN)
    headers = {**bearer(TOKEN), "Content-Type": "application/json"}
    async with client.post(f"{base}/api/retry", data=b"{not json", headers=headers) as response:
        assert response.status == 400


async def test_retry_as_a_form_post_is_refused_so_web_pages_cannot_forge_it(
    serve: Serve, client: aiohttp.ClientSession
) -> None:
    daemon = FakeDaemon()
    base = await serve(daemon, token=TOKEN)
    async with client.post(f"{base}/api/retry", data={"all": "true"}, headers=bearer(TOKEN)) as response:
        assert response.status == 415
    headers = {**bearer(TOKEN), "Content-Type": "text/plain"}
    async with client.post(f"{base}/api/retry", data=b'{"all": true}', headers=headers) as response:
        assert response.status == 415
    assert daemon.retried == []


@pytest.mark.parametrize("bind", ["127.0.0.1:0", "[::1]:0", "0.0.0.0:0"], ids=["loopback", "ipv6-loopback", "any"])
async def test_with_a_token_set_every_endpoint_needs_it_on_any_bind_except_healthz_and_metrics(
    serve: Serve, client: aiohttp.ClientSession, bind: str
) -> None:
    base = await serve(FakeDaemon(), token=TOKEN, reads=not is_loopback_bind(bind), bind=bind)
    base = base.replace("0.0.0.0", "127.0.0.1")
    for method, path in (("GET", "/status"), ("GET", "/nope"), ("HEAD", "/status"), ("POST", "/api/retry")):
        for headers in ({}, bearer("wrong"), bearer(TOKEN.upper()), {"Authorization": TOKEN}, bearer(TOKEN[:-1])):
            async with client.request(method, f"{base}{path}", headers=headers, json={"all": True}) as response:
                assert response.status == 401, (method, path, headers)
                assert "pending" not in await response.text()
        async with client.request(method, f"{base}{path}", headers={"Host": "localhost"}) as response:
            assert response.status == 401, (method, path)
    async with client.get(f"{base}/status", headers=bearer(TOKEN)) as response:
        assert response.status == 200
    for path in ("/healthz", "/metrics"):
        async with client.get(f"{base}{path}") as response:
            assert response.status == 200, path


async def test_reads_are_refused_when_required_but_no_token_is_configured(
    serve: Serve, client: aiohttp.ClientSession
) -> None:
    base = await serve(FakeDaemon(), token=None, reads=True)
    async with client.get(f"{base}/status") as response:
        assert response.status == 401
        assert "http_token" in (await response.json())["error"]
    async with client.get(f"{base}/healthz") as response:
        assert response.status == 200


async def test_root_is_left_free_and_unknown_paths_are_json_404(serve: Serve, client: aiohttp.ClientSession) -> None:
    base = await serve(FakeDaemon(), token=None)
    for path in ("/", "/nope"):
        async with client.get(f"{base}{path}") as response:
            assert response.status == 404
            assert response.content_type == "application/json"


async def test_a_failing_status_callback_is_a_json_500(serve: Serve, client: aiohttp.ClientSession) -> None:
    class Broken(FakeDaemon):
        async def status(self) -> StatusSnapshot:
            raise RuntimeError("password=hunter2 leaked?")

    base = await serve(Broken(), token=None)
    async with client.get(f"{base}/status") as response:
        assert response.status == 500
        assert "hunter2" not in await response.text()


async def test_serves_on_ipv6_loopback(serve: Serve, client: aiohttp.ClientSession) -> None:
    try:
        base = await serve(FakeDaemon(), token=None, bind="[::1]:0")
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    async with client.get(f"{base}/healthz") as response:
        assert response.status == 200


@pytest.mark.parametrize(
    ("bind", "expected", "loopback"),
    [
        ("127.0.0.1:8765", ("127.0.0.1", 8765), True),
        ("[::1]:0", ("::1", 0), True),
        ("localhost:80", ("localhost", 80), True),
        (":8765", (None, 8765), False),
        ("0.0.0.0:8765", ("0.0.0.0", 8765), False),
        ("10.1.2.3:8765", ("10.1.2.3", 8765), False),
    ],
)
def test_parse_bind_and_loopback(bind: str, expected: tuple[str | None, int], loopback: bool) -> None:
    assert parse_bind(bind) == expected
    assert is_loopback_bind(bind) is loopback


@pytest.mark.parametrize("bind", ["8765", "host", "::1:80", "127.0.0.1:99999", "[::1]"])
def test_parse_bind_rejects_malformed_values(bind: str) -> None:
    with pytest.raises(BindError):
        parse_bind(bind)


async def test_paths_marked_public_load_without_a_token_but_data_still_needs_it(
    client: aiohttp.ClientSession,
) -> None:
    daemon = FakeDaemon()
    app = build_http_app(
        status=daemon.status, health=daemon.health, retry=daemon.retry, token=TOKEN, require_token_for_reads=True
    )

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html>dashboard</html>", content_type="text/html")

    app.router.add_get("/", page)
    app.router.add_get("/static/app.js", page)
    mark_public(app, "/", "/static/*")
    runner = await start_http_server("127.0.0.1:0", app)
    try:
        base = f"http://127.0.0.1:{bound_port(runner)}"
        for path in ("/", "/static/app.js"):
            async with client.get(f"{base}{path}") as response:
                assert response.status == 200, path
        async with client.get(f"{base}/status") as response:
            assert response.status == 401
    finally:
        await runner.cleanup()


async def test_a_raising_health_check_is_503_without_its_details(serve: Serve, client: aiohttp.ClientSession) -> None:
    class Broken(FakeDaemon):
        async def health(self) -> tuple[bool, str]:
            raise OSError("connect to postgresql://app:pw@db-internal failed")

    base = await serve(Broken(), token=None)
    async with client.get(f"{base}/healthz") as response:
        assert response.status == 503
        body = await response.json()
    assert body["ok"] is False and "OSError" in body["reason"]
    assert "db-internal" not in body["reason"]


async def test_a_page_addressed_by_a_foreign_host_name_needs_the_token(
    serve: Serve, client: aiohttp.ClientSession
) -> None:
    """DNS rebinding: a web page whose domain points at 127.0.0.1 must not read token-free data."""
    base = await serve(FakeDaemon(), token=None)
    async with client.get(f"{base}/status", headers={"Host": "attacker.example"}) as response:
        assert response.status == 403
    async with client.get(f"{base}/status", headers={"Host": "localhost"}) as response:
        assert response.status == 200
    async with client.get(f"{base}/healthz", headers={"Host": "attacker.example"}) as response:
        assert response.status == 200
