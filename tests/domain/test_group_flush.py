"""GroupFlush: callers that wait together share a syncfs, and none returns before a syncfs that
began after its own call has completed (the exactness the response rows rely on)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from cloudwatcher.domain import group_flush
from cloudwatcher.domain.group_flush import GroupFlush


async def test_concurrent_callers_share_flushes_and_each_waits_for_one_begun_after_its_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    began: list[int] = []  # the call counter's value when each syncfs began
    calls = 0
    gate = threading.Event()
    first_began = threading.Event()

    def recording_syncfs(path: str | Path) -> None:
        began.append(calls)
        first_began.set()
        gate.wait()  # held until every caller has arrived: they must queue behind this flush

    monkeypatch.setattr(group_flush, "syncfs", recording_syncfs)
    flush = GroupFlush()
    returned: list[tuple[int, int]] = []  # (the caller's number, flushes completed when it returned)

    async def caller() -> None:
        nonlocal calls
        calls += 1
        number = calls
        await flush.flush(tmp_path)
        returned.append((number, len(began)))

    first = asyncio.create_task(caller())
    await asyncio.to_thread(first_began.wait)
    others = [asyncio.create_task(caller()) for _ in range(9)]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(first, *others)
    assert len(began) == 2  # the first caller's flush, then one for the nine that waited behind it
    for number, flushes in returned:
        # some flush that began after this caller's call had completed when it returned
        assert any(counter >= number for counter in began[:flushes])


async def test_a_failed_flush_is_raised_and_the_next_caller_flushes_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcomes = [OSError(5, "I/O error"), None]

    def failing_once(path: str | Path) -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    monkeypatch.setattr(group_flush, "syncfs", failing_once)
    flush = GroupFlush()
    with pytest.raises(OSError):
        await flush.flush(tmp_path)
    await flush.flush(tmp_path)
    assert outcomes == []
