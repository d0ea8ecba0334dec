"""sd_notify against a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from cloudwatcher.daemon.ops.status import TargetStatus
from cloudwatcher.daemon.ops.systemd import SystemdNotifier, backlog_status, watchdog_interval, watchdog_loop


class FakeSystemd:
    """The receiving end of $NOTIFY_SOCKET."""

    def __init__(self, address: str | bytes, env_value: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(2.0)
        self.env_value = env_value

    def receive(self) -> dict[str, str]:
        data = self.sock.recv(4096).decode()
        assert data.endswith("\n")
        return dict(line.split("=", 1) for line in data.splitlines())

    def drain(self) -> list[dict[str, str]]:
        self.sock.setblocking(False)
        messages = []
        try:
            while True:
                data = self.sock.recv(4096).decode()
                messages.append(dict(line.split("=", 1) for line in data.splitlines()))
        except BlockingIOError:
            pass
        finally:
            self.sock.settimeout(2.0)
        return messages

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[FakeSystemd]:
    path = tmp_path / "notify.sock"
    fake = FakeSystemd(str(path), str(path))
    yield fake
    fake.close()


@pytest.fixture
def abstract_systemd() -> Iterator[FakeSystemd]:
    name = f"cloudwatcher-test-{uuid.uuid4().hex}"
    fake = FakeSystemd(b"\0" + name.encode(), "@" + name)
    yield fake
    fake.close()


def test_ready_status_and_stopping_reach_a_path_socket(systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", systemd.env_value)
    notifier = SystemdNotifier()
    assert notifier.enabled

    assert notifier.ready()
    assert systemd.receive() == {"READY": "1"}
    assert notifier.status("backlog: local 3 pending\nsecond line")
    assert systemd.receive() == {"STATUS": "backlog: local 3 pending second line"}
    assert notifier.stopping()
    assert systemd.receive() == {"STOPPING": "1"}
    notifier.close()


def test_ready_with_status_is_one_datagram(systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", systemd.env_value)
    SystemdNotifier().ready(status="watching")
    assert systemd.receive() == {"READY": "1", "STATUS": "watching"}


def test_abstract_socket_is_addressed_with_at_sign(
    abstract_systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", abstract_systemd.env_value)
    notifier = SystemdNotifier()
    assert notifier.watchdog()
    assert abstract_systemd.receive() == {"WATCHDOG": "1"}


def test_reloading_carries_monotonic_timestamp(systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", systemd.env_value)
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    SystemdNotifier().reloading()
    message = systemd.receive()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert message["RELOADING"] == "1"
    assert before <= int(message["MONOTONIC_USEC"]) <= after


def test_notify_sends_arbitrary_fields(systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", systemd.env_value)
    SystemdNotifier().notify(errno=5, STATUS="x")
    assert systemd.receive() == {"ERRNO": "5", "STATUS": "x"}


def test_without_notify_socket_everything_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    notifier = SystemdNotifier()
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog() is False
    assert notifier.watchdog_interval() is None


def test_a_vanished_socket_does_not_raise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    assert SystemdNotifier().ready() is False


def test_unset_environment_hides_the_socket_from_children(
    systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", systemd.env_value)
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    notifier = SystemdNotifier(unset_environment=True)
    assert "NOTIFY_SOCKET" not in os.environ and "WATCHDOG_USEC" not in os.environ
    assert notifier.watchdog_interval() == 1.0
    assert notifier.ready()
    assert systemd.receive() == {"READY": "1"}


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"WATCHDOG_USEC": "60000000"}, 30.0),
        ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid())}, 30.0),
        ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_is_half_the_timeout_for_our_pid_only(
    environ: dict[str, str], expected: float | None
) -> None:
    assert watchdog_interval(environ) == expected


async def test_watchdog_loop_pings_at_half_the_timeout_while_healthy(
    systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", systemd.env_value)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # 0.2 s → a ping every 0.1 s
    notifier = SystemdNotifier()
    checks = 0

    async def healthy() -> bool:
        nonlocal checks
        checks += 1
        return True

    task = asyncio.create_task(watchdog_loop(notifier, healthy))
    await asyncio.sleep(0.55)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    pings = systemd.drain()
    assert all(message == {"WATCHDOG": "1"} for message in pings)
    assert 3 <= len(pings) <= 7, pings  # 6 expected; a busy CI machine may delay some
    assert checks == len(pings)


async def test_no_watchdog_pings_while_unhealthy_and_they_resume_after(
    systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", systemd.env_value)
    notifier = SystemdNotifier()
    state = {"database_up": False}

    async def healthy() -> bool:
        return state["database_up"]

    task = asyncio.create_task(watchdog_loop(notifier, healthy, interval=0.05))
    await asyncio.sleep(0.3)
    assert systemd.drain() == []
    state["database_up"] = True
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(systemd.drain()) >= 2


async def test_a_hanging_or_failing_health_check_withholds_pings(
    systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", systemd.env_value)
    calls = 0

    async def hangs_then_raises() -> bool:
        nonlocal calls
        calls += 1
        if calls % 2:
            await asyncio.sleep(10)
        raise ConnectionRefusedError("database down")

    task = asyncio.create_task(watchdog_loop(SystemdNotifier(), hangs_then_raises, interval=0.05))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls >= 3
    assert systemd.drain() == []


async def test_watchdog_loop_returns_when_systemd_set_no_watchdog(
    systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", systemd.env_value)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)

    async def healthy() -> bool:
        raise AssertionError("must not be called")

    await asyncio.wait_for(watchdog_loop(SystemdNotifier(), healthy), timeout=1)
    assert systemd.drain() == []


def test_backlog_status_is_one_readable_line() -> None:
    targets = [
        {"name": "local", "pending": 3, "uploading": 1, "failed": 2, "gave_up": 1},
        {"name": "sp", "pending": 0, "uploading": 0, "failed": 0, "gave_up": 0},
    ]
    assert (
        backlog_status(cast(list[TargetStatus], targets))
        == "local: 3 pending, 1 uploading, 2 failed (1 gave up) | sp: in sync"
    )
    assert backlog_status([]) == "no targets"
