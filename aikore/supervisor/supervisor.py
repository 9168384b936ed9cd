"""The supervisor: the registry of instances and the owner of everything that happens to them.

Every instance has one ``InstanceProcess`` (its state machine, holding the one in-memory copy of
the instance); the API asks the supervisor to create, change, rename, delete, start and stop, and
the supervisor publishes what happened as typed domain events (``aikore.supervisor.events``).
The database is written first and the in-memory copy after, so a failed write never leaves
AiKore believing something the database does not say.

At start, instances the database says were active are re-adopted if their process is still the
same one (pid + create time) - a ``kill -9`` of AiKore loses nothing. A graceful stop stops every
instance's whole process tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aikore.config import Settings
from aikore.errors import AikoreError, not_found
from aikore.events import EventBus
from aikore.store.blueprints import BlueprintCatalog
from aikore.store.db import Store
from aikore.store.instance import LIVE_FIELDS, Instance
from aikore.store.workspace import Workspace
from aikore.supervisor.events import InstanceChanged, InstanceDeleted, InstanceRenamed, Runtime
from aikore.supervisor.oskit import OsKit, RealOsKit
from aikore.supervisor.ports import PortPool
from aikore.supervisor.process import CompanionFactory, InstanceProcess
from aikore.supervisor.records import MAIN, GroupRecords
from aikore.supervisor.states import ACTIVE_STATES, ERROR, STOPPED_STATES

log = logging.getLogger(__name__)

# An action answers once the state moved (e.g. to "stopping"); the rest happens in the background.
_ACTION_ANSWER_WITHIN = 5.0
# Scripts are text a person edits; a bigger body is a mistake, not a script.
MAX_SCRIPT = 512 * 1024


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
    """Registry of instances and their processes; implements the ``process.Host`` they call back into."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        workspace: Workspace,
        events: EventBus,
        kit: OsKit | None = None,
        blueprints: BlueprintCatalog | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.records = GroupRecords(store)
        self.workspace = workspace
        self.blueprints = blueprints
        self.events = events
        self.kit: OsKit = kit or RealOsKit()
        self.ports = PortPool(exclude=[*settings.public_ports, settings.port])
        self.companions: list[CompanionFactory] = []
        self.on_stop: list[Callable[[Instance], None]] = []
        self.backoff = Backoff()
        self.autostart_stagger = 2.0
        self._procs: dict[int, InstanceProcess] = {}
        self._restarts: dict[int, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        # Serialises creates, renames, deletes and starts, so the name/folder/row checks and the
        # changes they guard are atomic.
        self._mutations = asyncio.Lock()

    # -- lifecycle --------------------------------------------------------------------------

    async def startup(self) -> None:
        """Load every instance, announce it, and re-adopt what a previous AiKore left running."""
        for instance in await self.store.list_instances():
            self._procs[instance.id] = InstanceProcess(instance, self)
            # Listeners (route tables, metric labels) build their state from these events.
            self.publish(instance)
        for proc in list(self._procs.values()):
            if proc.state in ACTIVE_STATES:
                try:
                    await proc.adopt()
                except Exception:
                    log.exception("instance %s: re-adoption failed", proc.instance.name)

    async def begin_autostart(self) -> None:
        """Start autostart instances in the background, staggered (called once the app is up)."""
        ids = [i.id for i in self.instances() if i.autostart]
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
            proc = self._procs.get(instance_id)
            if proc is not None and proc.state in STOPPED_STATES:
                try:
                    await proc.start(note="autostart")
                except AikoreError as exc:
                    log.warning("autostart of instance %s: %s", instance_id, exc.message)

    # -- the registry -----------------------------------------------------------------------

    def instances(self) -> list[Instance]:
        """Every instance, by id."""
        return [self._procs[i].instance for i in sorted(self._procs)]

    def get(self, instance_id: int) -> InstanceProcess:
        """The instance's process, or a 404."""
        proc = self._procs.get(instance_id)
        if proc is None:
            raise not_found("instance", instance_id)
        return proc

    def instance(self, instance_id: int) -> Instance:
        return self.get(instance_id).instance

    def runtime(self, instance: Instance) -> Runtime:
        """How the instance is served, from its own launch.sh header (re-read when the file changed)."""
        meta = self.workspace.metadata(instance.name, instance.blueprint)
        return Runtime(proxy_mode=meta.proxy_mode, health=meta.health)

    async def create(self, fields: dict[str, Any]) -> Instance:
        """A new instance from a blueprint: its folder (with launch.sh) and its row appear together."""
        blueprint = self.blueprints.get(fields["blueprint"]) if self.blueprints is not None else None
        if blueprint is None:
            raise AikoreError(
                "unknown_blueprint", f"blueprint: no blueprint with id {fields['blueprint']!r}", 400, field="blueprint"
            )
        async with self._mutations:
            self._check_free(fields["name"], fields.get("public_port"), exclude_id=None)
            staging = self.workspace.prepare(fields["name"], blueprint.path)
            try:
                instance = await self._insert(fields)
                try:
                    self.workspace.commit(staging, fields["name"])
                except BaseException:
                    await self.store.delete_instance(instance.id)
                    raise
            except BaseException:
                self.workspace.discard(staging)
                raise
            self._procs[instance.id] = InstanceProcess(instance, self)
        self.publish(instance)
        return instance

    async def update(self, instance_id: int, changes: dict[str, Any]) -> Instance:
        """Change settings; a rename moves the folder too. Only live fields change while it runs."""
        async with self._mutations:
            proc = self.get(instance_id)
            old = proc.instance
            changes = {k: v for k, v in changes.items() if getattr(old, k) != v}
            if not changes:
                return old
            if not set(changes) <= LIVE_FIELDS and proc.state not in STOPPED_STATES:
                fields = ", ".join(sorted(set(changes) - LIVE_FIELDS))
                raise AikoreError(
                    "instance_running", f"{fields}: stop the instance before changing this", 409,
                    field=sorted(set(changes) - LIVE_FIELDS)[0],
                )
            new_name = changes.get("name")
            self._check_free(new_name, changes.get("public_port"), exclude_id=instance_id)
            if new_name is not None:
                self.workspace.rename(old.name, new_name)
            try:
                updated = await proc.write(**changes)
            except BaseException:
                if new_name is not None:
                    self.workspace.rename(new_name, old.name)
                raise
        if new_name is not None:
            self.events.publish(InstanceRenamed(old.name, updated, self.runtime(updated)))
        else:
            self.publish(updated)
        return updated

    async def delete(self, instance_id: int) -> tuple[Instance, Path | None]:
        """Stop it, then remove the row and move the folder to the trash (nothing is erased)."""
        async with self._mutations:
            proc = self.get(instance_id)
            self._cancel_restart(instance_id)
            await proc.stop("deleting the instance")
            if proc.state not in STOPPED_STATES:
                raise AikoreError("instance_running", "instance is still running; stop it first", 409)
            instance = proc.instance
            await self.store.delete_instance(instance_id)
            del self._procs[instance_id]
            retired = self.workspace.retire(instance.name)
        self.events.publish(InstanceDeleted(instance))
        return instance, retired

    def read_script(self, instance_id: int) -> str:
        instance = self.instance(instance_id)
        try:
            return self.workspace.read_script(instance.name)
        except FileNotFoundError:
            raise AikoreError("script_missing", f"instances/{instance.name}/launch.sh does not exist", 404) from None

    def write_script(self, instance_id: int, content: str) -> Instance:
        """Replace launch.sh (the previous one becomes launch.sh.bak)."""
        instance = self.instance(instance_id)
        self.workspace.write_script(instance.name, content)
        # Header edits (proxy mode, health path) change how the instance is routed: tell listeners.
        self.publish(instance)
        return instance

    def _check_free(self, name: str | None, public_port: int | None, exclude_id: int | None) -> None:
        others = [i for i in self.instances() if i.id != exclude_id]
        if name is not None:
            if any(i.name == name for i in others):
                raise AikoreError("name_taken", f"name: an instance named {name!r} already exists", 409, field="name")
            if self.workspace.exists(name):
                raise AikoreError(
                    "folder_exists",
                    f"name: folder instances/{name}/ already exists on disk; move it or pick another name",
                    409,
                    field="name",
                )
        if public_port is not None:
            holder = next((i for i in others if i.public_port == public_port), None)
            if holder is not None:
                raise AikoreError(
                    "public_port_unavailable",
                    f"public_port: {public_port} is already used by instance {holder.name!r}",
                    409,
                    field="public_port",
                )

    async def _insert(self, fields: dict[str, Any]) -> Instance:
        try:
            return await self.store.insert_instance(**fields)
        except sqlite3.IntegrityError:
            # The checks ran under the lock, so only another AiKore on the same DB gets here.
            raise AikoreError("conflict", "name or public_port was taken meanwhile; retry", 409) from None

    # -- actions ----------------------------------------------------------------------------

    async def start(self, instance_id: int, rebuild: bool = False) -> Instance:
        # Under the mutation lock: a rename or delete cannot slip between reading the name and spawning.
        async with self._mutations:
            proc = self.get(instance_id)
            self._cancel_restart(instance_id)
            proc.failures = 0
            await proc.start(rebuild=rebuild, note="rebuilding the environment" if rebuild else None)
        return proc.instance

    async def stop(self, instance_id: int) -> Instance:
        """Begin stopping; returns once the instance is ``stopping`` (or already stopped)."""
        proc = self.get(instance_id)
        self._cancel_restart(instance_id)
        if proc.state in ACTIVE_STATES:
            await self._answer_when_moved(proc, proc.stop())
        return proc.instance

    async def restart(self, instance_id: int, rebuild: bool = False) -> Instance:
        """Stop (if active) then start; returns once the state moved."""
        async with self._mutations:
            proc = self.get(instance_id)
            self._cancel_restart(instance_id)
            proc.failures = 0
            note = "rebuilding the environment" if rebuild else None

            async def stop_then_start() -> None:
                await proc.stop("restarting" if not rebuild else "rebuilding")
                await proc.start(rebuild=rebuild, note=note)

            await self._answer_when_moved(proc, stop_then_start())
        return proc.instance

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

    # -- process.Host -----------------------------------------------------------------------

    def publish(self, instance: Instance) -> None:
        self.events.publish(InstanceChanged(instance, self.runtime(instance)))

    async def failed(self, proc: InstanceProcess, exit_code: int | None) -> str | None:
        """Restart policy: schedule the next attempt of an ``on-failure`` instance; say what happens."""
        if proc.instance.restart_policy != "on-failure":
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

    def stopped(self, instance: Instance) -> None:
        for callback in self.on_stop:
            try:
                callback(instance)
            except Exception:
                log.exception("supervisor callback %r failed", callback)

    # -- internals --------------------------------------------------------------------------

    async def _restart_later(self, proc: InstanceProcess, delay: float, attempt: int) -> None:
        await self.kit.sleep(delay)
        # The failure is still being handled (leftovers stopped under the lock) until it is ERROR.
        async with proc.lock:
            pass
        self._restarts.pop(proc.id, None)
        if proc.state != ERROR or self._procs.get(proc.id) is not proc:
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
