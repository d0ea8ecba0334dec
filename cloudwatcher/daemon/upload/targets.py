"""The running targets: one provider and one upload worker per configured target.

Kept apart from the service so that a configuration reload (SIGHUP) can add, remove or rebuild
single targets while the others keep uploading.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from cloudwatcher.config import ConfigError, Settings, TargetConfig
from cloudwatcher.daemon.health import DatabaseHealth
from cloudwatcher.daemon.ledger.recorder import TargetSpec
from cloudwatcher.daemon.ledger.store import ClaimedRow, Ledger
from cloudwatcher.daemon.upload.outcomes import ResultHook
from cloudwatcher.daemon.upload.worker import TargetUploader
from cloudwatcher.providers import Provider, build_provider

log = logging.getLogger(__name__)


@dataclass
class RunningTarget:
    config: TargetConfig
    provider: Provider
    uploader: TargetUploader
    stop: asyncio.Event
    task: asyncio.Task[None] | None = None


def target_specs(targets: Iterable[TargetConfig]) -> list[TargetSpec]:
    """What the recorder needs of each target: its name, provider key and filters."""
    return [TargetSpec(t.name, t.provider, tuple(t.include), tuple(t.exclude)) for t in targets]


class TargetSet:
    """The targets that are running, by name, each with its provider, uploader and task.

    The service talks to the targets only through this, so that a reload can swap one target
    (new credentials, say) while the rest keep uploading, and the recorder's hand-off reaches
    whichever uploader runs the target now.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        ledger: Ledger,
        health: DatabaseHealth,
        instance_id: UUID | None,
        on_changed_file: Callable[[str], None],
        on_result: Callable[[str, str], ResultHook],
        spawn: Callable[[Awaitable[Any], str], asyncio.Task[Any]],
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.health = health
        self.instance_id = instance_id
        self.on_changed_file = on_changed_file
        self.on_result = on_result
        self.spawn = spawn
        self.running: dict[str, RunningTarget] = {}

    # ------------------------------------------------------------------ building
    def _build(self, index: int, target: TargetConfig) -> RunningTarget:
        try:
            provider = build_provider(target, concurrency=self.settings.upload_concurrency)
        except (ValueError, OSError) as exc:  # e.g. a ca_bundle or key file that does not exist
            raise ConfigError(f"configuration error: targets[{index}] ({target.name}): {exc}") from exc
        uploader = TargetUploader(
            name=target.name,
            provider=provider,
            provider_tag=target.provider,
            ledger=self.ledger,
            health=self.health,
            retry=self.settings.retry,
            watch_root=self.settings.watch_path,
            concurrency=self.settings.upload_concurrency,
            instance_id=self.instance_id,
            on_changed_file=self.on_changed_file,
            on_result=self.on_result(target.name, target.provider),
        )
        return RunningTarget(target, provider, uploader, asyncio.Event())

    def _launch(self, running: RunningTarget) -> None:
        running.task = self.spawn(running.uploader.run(running.stop), f"uploader:{running.config.name}")
        self.running[running.config.name] = running

    def start(self, targets: list[TargetConfig]) -> None:
        """Build every target first (a bad one stops start-up with exit 2), then start them all."""
        built = [self._build(index, target) for index, target in enumerate(targets)]
        for running in built:
            self._launch(running)

    async def apply(self, targets: list[TargetConfig]) -> tuple[list[str], list[str], list[str]]:
        """Bring the running targets in line with ``targets``; return (added, removed, rebuilt)."""
        wanted = {target.name: (index, target) for index, target in enumerate(targets)}
        built: dict[str, RunningTarget] = {}
        for name, (index, target) in wanted.items():
            current = self.running.get(name)
            if current is None or current.config != target:
                built[name] = self._build(index, target)  # all or nothing: raises before stopping any
        removed = [name for name in self.running if name not in wanted]
        rebuilt = [name for name in built if name in self.running]
        for name in removed + rebuilt:
            await self._retire(self.running.pop(name))
        for running in built.values():
            self._launch(running)
        added = [name for name in built if name not in rebuilt]
        return added, removed, rebuilt

    async def _retire(self, running: RunningTarget) -> None:
        """Stop one target's worker (in-flight uploads finish or hand their claims back)."""
        running.stop.set()
        if running.task is not None:
            await asyncio.wait([running.task], timeout=10.0)
        with contextlib.suppress(Exception):
            await running.provider.close()

    # ------------------------------------------------------------------ running
    def wake(self, names: Iterable[str] | None = None) -> None:
        for name in self.running if names is None else names:
            if name in self.running:
                self.running[name].uploader.notify_pending()

    # The recorder's hand-off (recorder.Handoff): rows born claimed go straight to their uploader.
    def room(self, target: str) -> int:
        running = self.running.get(target)
        return running.uploader.handoff_room() if running is not None else 0

    def take(self, claimed: dict[str, list[ClaimedRow]], left_pending: set[str]) -> None:
        for name, rows in claimed.items():
            running = self.running.get(name)
            if running is not None:  # else retired by a reload meanwhile: the leases run out
                running.uploader.accept(rows)
        self.wake(left_pending)

    async def stop_all(self, deadline: float = 9.0) -> None:
        for running in self.running.values():
            running.stop.set()
        tasks = [r.task for r in self.running.values() if r.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=deadline)

    async def close(self) -> None:
        for running in self.running.values():
            with contextlib.suppress(Exception):
                await running.provider.close()
