"""The supervisor: every instance's process, re-adoption at start, autostart, restart policy, shutdown.

Instances are registered once per AiKore run; each has one ``InstanceProcess`` (its state
machine). At start, instances the database says were active are re-adopted if their process is
still the same one (pid + create time) - a ``kill -9`` of AiKore loses nothing. A graceful stop
stops every instance's whole process tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from aikore.config import Settings
from aikore.errors import AikoreError
from aikore.events import Event
from aikore.store.db import Store
from aikore.store.instance import Instance
from aikore.store.workspace import Workspace
from aikore.supervisor.oskit import OsKit, RealOsKit
from aikore.supervisor.ports import PortPool
from aikore.supervisor.process import CompanionFactory, InstanceProcess
from aikore.supervisor.records import MAIN, GroupRecords
from aikore.supervisor.states import ACTIVE_STATES, ERROR, STOPPED_STATES

log = logging.getLogger(__name__)

# An action answers once the state moved (e.g. to "stopping"); the rest happens in the background.
_ACTION_ANSWER_WITHIN = 5.0


@dataclass(frozen=True)
class Backoff:
    """``on-failure`` restarts: delay ``base * factor**(n-1)`` up to ``max_delay``, at most ``max_attempts``
    in a row; a run that stayed ready for ``stable_after`` seconds resets the count."""

    base: float = 1.0
    factor: float = 2.0
    max_delay: float = 60.0
    max_attempts: int = 5
    stable_after: float = 60.0

    def delay(self, attempt: int) -> float:
        return min(self.base * self.factor ** (attempt - 1), self.max_delay)


class Supervisor:
    """Registry of instance processes; implements the ``process.Host`` they call back into."""

    def __init__(
        self, settings: Settings, store: Store, workspace: Workspace, publish: Callable[[Instance], None],
        kit: OsKit | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.records = GroupRecords(store)
        self.workspace = workspace
        self.kit: OsKit = kit or RealOsKit()
        self.ports = PortPool(exclude=[*settings.public_ports, settings.port])
        self.companions: list[CompanionFactory] = []
        self.on_ready: list[Callable[[Instance], None]] = []
        self.on_stop: list[Callable[[Instance], None]] = []
        self.backoff = Backoff()
        self.autostart_stagger = 2.0
        self._publish = publish
        self._procs: dict[int, InstanceProcess] = {}
        self._restarts: dict[int, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle --------------------------------------------------------------------------

    async def startup(self) -> None:
        """Re-adopt what a previous AiKore left running (pid + create time, or it is marked gone)."""
        for instance in await self.store.list_instances():
            proc = self._procs[instance.id] = InstanceProcess(instance.id, self, instance.status)
            if instance.status in ACTIVE_STATES:
                try:
                    await proc.adopt(instance)
                except Exception:
                    log.exception("instance %s: re-adoption failed", instance.name)

    async def begin_autostart(self) -> None:
        """Start autostart instances in the background, staggered (called once the app is up)."""
        ids = [i.id for i in await self.store.list_instances() if i.autostart]
        if ids:
            self._spawn(self._autostart(ids))

    async def shutdown(self) -> None:
        """Stop every instance (in parallel: each may take stop_timeout) and every background task."""
        for task in [*self._tasks, *self._restarts.values()]:
            task.cancel()
        for task in [*self._tasks, *self._restarts.values()]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        results = await asyncio.gather(
            *(p.stop("AiKore is shutting down") for p in self._procs.values()), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                log.error("stopping an instance at shutdown failed: %r", result)
        await self.kit.close()

    async def _autostart(self, ids: list[int]) -> None:
        for index, instance_id in enumerate(ids):
            if index:
                # Staggered: several WebUIs loading models at once would fight for disk and VRAM.
                await asyncio.sleep(self.autostart_stagger)
            proc = self.get(instance_id)
            if proc.state in STOPPED_STATES:
                try:
                    await proc.start(note="autostart")
                except AikoreError as exc:
                    log.warning("autostart of instance %s: %s", instance_id, exc.message)

    # -- what the API calls -----------------------------------------------------------------

    def get(self, instance_id: int) -> InstanceProcess:
        proc = self._procs.get(instance_id)
        if proc is None:
            proc = self._procs[instance_id] = InstanceProcess(instance_id, self)
        return proc

    async def start(self, instance_id: int, rebuild: bool = False) -> None:
        proc = self.get(instance_id)
        self._cancel_restart(instance_id)
        proc.failures = 0
        await proc.start(rebuild=rebuild, note="rebuilding the environment" if rebuild else None)

    async def stop(self, instance_id: int) -> None:
        """Begin stopping; returns once the instance is ``stopping`` (or already stopped)."""
        self._cancel_restart(instance_id)
        proc = self.get(instance_id)
        if proc.state in ACTIVE_STATES:
            await self._answer_when_moved(proc, proc.stop())

    async def restart(self, instance_id: int, rebuild: bool = False) -> None:
        """Stop (if active) then start; returns once the state moved."""
        self._cancel_restart(instance_id)
        proc = self.get(instance_id)
        proc.failures = 0
        note = "rebuilding the environment" if rebuild else None

        async def stop_then_start() -> None:
            await proc.stop("restarting" if not rebuild else "rebuilding")
            await proc.start(rebuild=rebuild, note=note)

        await self._answer_when_moved(proc, stop_then_start())

    async def stop_before_delete(self, instance: Instance) -> None:
        """BEFORE_DELETE hook: the whole tree is gone before the row and folder are."""
        self._cancel_restart(instance.id)
        await self.get(instance.id).stop("deleting the instance")

    def instance_pids(self) -> dict[int, tuple[int, ...]]:
        """Instance id -> root pids (the app's group first, then companions) of live instances.

        The monitor counts every tree as the instance's, so a persistent desktop's encoder and
        browser show up in its usage.
        """
        return {
            iid: (proc.groups[MAIN].handle.pid, *(g.handle.pid for role, g in proc.groups.items() if role != MAIN))
            for iid, proc in self._procs.items()
            if proc.state in ACTIVE_STATES and MAIN in proc.groups
        }

    def add_companion(self, factory: CompanionFactory) -> None:
        """Run ``factory``'s command with every start, as part of the instance (see CompanionSpec)."""
        self.companions.append(factory)

    def on_event(self, event: Event) -> None:
        """EventBus listener: forget deleted instances (a rename keeps the id and the process)."""
        if event.kind == "instance_deleted" and not event.data.get("renamed"):
            self._cancel_restart(event.data["id"])
            proc = self._procs.get(event.data["id"])
            if proc is not None and proc.state in STOPPED_STATES:
                del self._procs[event.data["id"]]

    # -- process.Host -----------------------------------------------------------------------

    def publish(self, instance: Instance) -> None:
        self._publish(instance)

    async def failed(self, proc: InstanceProcess, exit_code: int | None) -> str | None:
        """Restart policy: schedule the next attempt of an ``on-failure`` instance; say what happens."""
        instance = await self.store.get_instance(proc.id)
        if instance is None or instance.restart_policy != "on-failure":
            return None
        if exit_code == 0:
            return "exited cleanly; on-failure does not restart it"
        if proc.ready_at is not None and self.kit.monotonic() - proc.ready_at >= self.backoff.stable_after:
            proc.failures = 0
        proc.failures += 1
        if proc.failures > self.backoff.max_attempts:
            return f"restart policy gave up after {self.backoff.max_attempts} attempts in a row"
        delay = self.backoff.delay(proc.failures)
        attempt = proc.failures
        self._cancel_restart(proc.id)
        self._restarts[proc.id] = asyncio.create_task(self._restart_later(proc, delay, attempt))
        return f"restarting in {delay:g} s (attempt {attempt} of {self.backoff.max_attempts})"

    def ready(self, instance: Instance) -> None:
        self._call(self.on_ready, instance)

    def stopped(self, instance: Instance) -> None:
        self._call(self.on_stop, instance)

    # -- internals --------------------------------------------------------------------------

    async def _restart_later(self, proc: InstanceProcess, delay: float, attempt: int) -> None:
        await self.kit.sleep(delay)
        # The failure is still being handled (leftovers stopped under the lock) until it is ERROR.
        async with proc.lock:
            pass
        self._restarts.pop(proc.id, None)
        if proc.state != ERROR:
            return
        try:
            await proc.start(note=f"restart attempt {attempt} of {self.backoff.max_attempts} after a failure")
        except AikoreError as exc:
            log.warning("restart of instance %s: %s", proc.id, exc.message)

    def _cancel_restart(self, instance_id: int) -> None:
        task = self._restarts.pop(instance_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _answer_when_moved(self, proc: InstanceProcess, action: Coroutine[Any, Any, Any]) -> None:
        event = proc.next_change()
        task = self._spawn(action)
        changed = asyncio.ensure_future(event.wait())
        await asyncio.wait({task, changed}, timeout=_ACTION_ANSWER_WITHIN, return_when=asyncio.FIRST_COMPLETED)
        changed.cancel()
        if task.done() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]

    def _spawn(self, coro: Coroutine[Any, Any, Any] | Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if not isinstance(exc, AikoreError):
                log.error("supervisor task failed", exc_info=exc)

    @staticmethod
    def _call(callbacks: list[Callable[[Instance], None]], instance: Instance) -> None:
        for callback in callbacks:
            try:
                callback(instance)
            except Exception:
                log.exception("supervisor callback %r failed", callback)
