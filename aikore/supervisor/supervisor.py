"""The supervisor: the registry of instances and the owner of everything that happens to them.

Every instance has one ``InstanceProcess`` (its state machine, holding the one in-memory copy of
the instance); the API asks the supervisor to create, change, rename, delete, start and stop, and
the supervisor publishes what happened as typed domain events (``aikore.supervisor.events``).
The database is written first and the in-memory copy after, so a failed write never leaves
AiKore believing something the database does not say.

At start, instances the database says were active are re-adopted if their process is still the
same one (pid + create time) - a ``kill -9`` of AiKore loses nothing - and what a crash interrupted
is completed or rolled back: a create's staged folder, a delete's moved folder, a start's launches,
a pending restart. A graceful stop stops every instance's whole process tree.

Locks: each instance's ``ops`` lock orders the operations on it (start, restart, delete, rename);
the registry's lock is held only for the name and public-port checks and the changes they guard,
never across a stop or a start, so one instance's slow stop holds up no other instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aikore.config import Settings
from aikore.errors import AikoreError, not_found
from aikore.events import EventBus
from aikore.store import faults
from aikore.store.blueprints import BlueprintCatalog
from aikore.store.db import Store
from aikore.store.faults import StorageError
from aikore.store.instance import LIVE_FIELDS, Instance
from aikore.store.workspace import Workspace
from aikore.supervisor import crashpoints
from aikore.supervisor.copies import Copies
from aikore.supervisor.events import InstanceChanged, InstanceDeleted, InstanceRenamed, Runtime
from aikore.supervisor.oskit import OsKit, RealOsKit
from aikore.supervisor.ports import PortPool
from aikore.supervisor.process import CompanionFactory, InstanceProcess, RestartPlan
from aikore.supervisor.records import MAIN, GroupRecords
from aikore.supervisor.restarts import PendingRestart, PendingRestarts
from aikore.supervisor.slurm import Slurm
from aikore.supervisor.states import ACTIVE_STATES, ERROR, STOPPED_STATES, STOPPING

log = logging.getLogger(__name__)
T = TypeVar("T")

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
        slurm: Slurm | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.records = GroupRecords(store)
        self.pending = PendingRestarts(store)
        self.workspace = workspace
        self.blueprints = blueprints
        self.events = events
        self.kit: OsKit = kit or RealOsKit()
        # The second launcher, for instances that chose a Slurm partition (--slurm).
        self.slurm: Slurm | None = slurm if slurm is not None else (Slurm() if settings.slurm else None)
        self.ports = PortPool(exclude=[*settings.public_ports, settings.port])
        self.companions: list[CompanionFactory] = []
        self.on_stop: list[Callable[[Instance], None]] = []
        self.backoff = Backoff()
        self.autostart_stagger = 2.0
        self._procs: dict[int, InstanceProcess] = {}
        self._restarts: dict[int, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._autostart: asyncio.Task[None] | None = None
        self._closing = False
        # Names of copies under way: taken for their staging folder until the copy ends.
        self._reserved: set[str] = set()
        self.copies = Copies(self)
        # Held only for the name and public-port checks and the changes they guard (a create, a
        # rename, the removal of a deleted row): short, and never across a stop or a start.
        self._registry = asyncio.Lock()

    # -- lifecycle --------------------------------------------------------------------------

    async def startup(self) -> None:
        """Finish what a crash interrupted, load every instance, announce it, re-adopt what runs."""
        await self._finish_interrupted_folders()
        if self.slurm is not None:
            # Its queue is read first: re-adoption finds the jobs an earlier AiKore submitted.
            await self.slurm.start()
        for instance in await self.store.list_instances():
            instance = await self._move_legacy_launch_args(instance)
            self._procs[instance.id] = InstanceProcess(instance, self)
            # Listeners (route tables, metric labels) build their state from these events.
            self.publish(instance)
        recorded = await self.records.instance_ids()
        procs = list(self._procs.values())
        # In parallel: the leftovers of one instance, given their grace, hold up no other.
        results = await asyncio.gather(*(self._take_over(p, p.id in recorded) for p in procs), return_exceptions=True)
        for proc, result in zip(procs, results, strict=True):
            if isinstance(result, BaseException):
                log.error("instance %s: re-adoption failed", proc.instance.name, exc_info=result)
        await self._resume_pending_restarts()
        self.kit.tidy_cgroups(await self.records.cgroups())

    async def _move_legacy_launch_args(self, instance: Instance) -> Instance:
        """An instance's ``config/launch_args.txt`` (the older form) joins its launch_args setting, once."""
        try:
            words = self.workspace.take_legacy_launch_args(instance.name)
        except OSError as exc:
            log.warning("instance %s: cannot move launch_args.txt into its settings: %s", instance.name, exc)
            return instance
        if words is None:
            return instance
        try:
            updated = await self.store.update_instance(instance, launch_args=(*instance.launch_args, *words))
        except StorageError as exc:
            # The file goes back where the script reads it: the arguments are not lost, only not moved.
            with contextlib.suppress(OSError):
                self.workspace.restore_legacy_launch_args(instance.name)
            log.warning("instance %s: launch_args.txt stays (%s)", instance.name, exc.message)
            return instance
        log.info("instance %s: launch_args.txt moved into its settings (%s)", instance.name, " ".join(words))
        return updated

    async def _take_over(self, proc: InstanceProcess, recorded: bool) -> None:
        if proc.state == STOPPING:
            # It was being stopped when AiKore went away: that stop is finished in the background,
            # so AiKore answers at once however long the grace periods (or leftovers) take.
            self._spawn(self._finish_stop(proc))
        elif proc.state in ACTIVE_STATES:
            await proc.adopt()
        elif recorded:
            await proc.roll_back_interrupted_start()

    async def _finish_stop(self, proc: InstanceProcess) -> None:
        if await proc.adopt():
            await proc.stop()

    async def _finish_interrupted_folders(self) -> None:
        """A create or delete a crash interrupted is completed, so a row and its folder go together."""
        rows = {i.name: i for i in await self.store.list_instances()}
        for name, instance_id, folder in self.workspace.deleting():
            row = rows.get(name)
            if row is not None and row.id == instance_id:
                # Its folder was already moved aside for the delete: the row follows it.
                await self.store.delete_instance(instance_id)
                del rows[name]
            self.workspace.trash(folder, name)
            log.warning("instance %r: finished a delete an AiKore crash interrupted", name)
        for name, staging in self.workspace.staged():
            if name in rows and not self.workspace.exists(name):
                # Its row was written: the folder built for it goes into place.
                self.workspace.commit(staging, name)
                log.warning("instance %r: finished a create an AiKore crash interrupted", name)
            else:
                self.workspace.discard(staging)

    async def _resume_pending_restarts(self) -> None:
        for instance_id, pending in (await self.pending.load()).items():
            if instance_id in self._restarts:
                continue  # its re-adoption found it failed and scheduled afresh
            proc = self._procs.get(instance_id)
            if proc is None or proc.state != ERROR or proc.instance.restart_policy != "on-failure":
                with contextlib.suppress(StorageError):
                    await self.pending.remove(instance_id)
                continue
            proc.failures = pending.attempt
            delay = max(0.0, pending.due - time.time())
            log.info("instance %s: restart attempt %s resumes in %.1f s", proc.instance.name, pending.attempt, delay)
            self._restarts[instance_id] = asyncio.create_task(self._restart_later(proc, delay, pending.attempt))

    async def begin_autostart(self) -> None:
        """Start autostart instances in the background, staggered (called once the app is up)."""
        ids = [i.id for i in self.instances() if i.autostart]
        if ids:
            self._autostart = asyncio.create_task(self._autostart_all(ids))

    async def shutdown(self) -> None:
        """Stop every instance (in parallel: each may take stop_timeout) and every background task.

        Actions under way finish (a start cancelled midway could leave what it spawned unrecorded),
        but none starts anything any more.
        """
        self._closing = True
        self.copies.cancel_all()
        waits = [t for t in [self._autostart, *self._restarts.values()] if t is not None]
        for task in waits:
            task.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
        procs = list(self._procs.values())
        results = await asyncio.gather(
            *list(self._tasks), *(p.stop("AiKore is shutting down") for p in procs), return_exceptions=True
        )
        for result in results[len(results) - len(procs):]:
            if isinstance(result, BaseException):
                log.error("stopping an instance at shutdown failed: %r", result)
        await asyncio.gather(*(p.close() for p in procs), return_exceptions=True)
        await self.kit.close()
        if self.slurm is not None:
            await self.slurm.close()

    async def _autostart_all(self, ids: list[int]) -> None:
        for index, instance_id in enumerate(ids):
            if index:
                # Staggered: several WebUIs loading models at once would fight for disk and VRAM.
                await asyncio.sleep(self.autostart_stagger)
            proc = self._procs.get(instance_id)
            if proc is None:
                continue
            async with proc.ops:
                if proc.state not in STOPPED_STATES or proc.retired or self._closing:
                    continue
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
        """How the instance is served, from its own launch.sh header (re-read when the file changed),
        and its start's install progress."""
        meta = self.workspace.metadata(instance.name, instance.blueprint)
        proc = self._procs.get(instance.id)
        progress = proc.progress if proc is not None else None
        return Runtime(proxy_mode=meta.proxy_mode, health=meta.health, progress=progress, variables=meta.variables)

    async def create(self, fields: dict[str, Any]) -> Instance:
        """A new instance from a blueprint: its folder (with launch.sh) and its row appear together."""
        blueprint = self.blueprints.get(fields["blueprint"]) if self.blueprints is not None else None
        if blueprint is None:
            raise AikoreError(
                "unknown_blueprint", f"blueprint: no blueprint with id {fields['blueprint']!r}", 400, field="blueprint"
            )
        async with self._registry:
            self._check_free(fields["name"], fields.get("public_port"), exclude_id=None)
            with _storage_errors():
                staging = self.workspace.prepare(fields["name"], blueprint.path)
            return await _to_the_end(self._create(fields, staging))

    async def _create(self, fields: dict[str, Any], staging: Path) -> Instance:
        # Row first, then the folder into place; a crash between them leaves the staged folder,
        # which the next start moves into place for the row (see _finish_interrupted_folders).
        try:
            instance = await self._insert(fields)
            crashpoints.reach("create:row")
            try:
                with _storage_errors():
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
        proc = self.get(instance_id)
        # Live fields (restart policy...) change at once, even during a long stop; others wait
        # for the instance's operations, as their check of the state needs.
        guard = proc.ops if not set(changes) <= LIVE_FIELDS else contextlib.nullcontext()
        async with guard:
            if proc.retired:
                raise not_found("instance", instance_id)
            async with self._registry:
                updated, new_name, old = await _to_the_end(self._update(proc, changes))
        if old is None:
            return updated
        if updated.restart_policy != "on-failure" and old.restart_policy == "on-failure":
            # A restart the old policy scheduled does not happen any more.
            await self._forget_restart(instance_id)
        if new_name is not None:
            self.events.publish(InstanceRenamed(old.name, updated, self.runtime(updated)))
        else:
            self.publish(updated)
        return updated

    async def _update(
        self, proc: InstanceProcess, changes: dict[str, Any]
    ) -> tuple[Instance, str | None, Instance | None]:
        old = proc.instance
        changes = {k: v for k, v in changes.items() if getattr(old, k) != v}
        if not changes:
            return old, None, None
        if not set(changes) <= LIVE_FIELDS and proc.state not in STOPPED_STATES:
            fields = ", ".join(sorted(set(changes) - LIVE_FIELDS))
            raise AikoreError(
                "instance_running", f"{fields}: stop the instance before changing this", 409,
                field=sorted(set(changes) - LIVE_FIELDS)[0],
            )
        new_name = changes.get("name")
        self._check_free(new_name, changes.get("public_port"), exclude_id=proc.id)
        if new_name is not None:
            self._refuse_if_satellites_active(proc, "renaming it (its folder moves)")
        if new_name is not None:
            with _storage_errors():
                self.workspace.rename(old.name, new_name)
        try:
            updated = await proc.write(**changes)
        except BaseException:
            if new_name is not None:
                self.workspace.rename(new_name, old.name)
            raise
        return updated, new_name, old

    async def delete(self, instance_id: int) -> tuple[Instance, Path | None]:
        """Stop it, then remove the row and move the folder to the trash (nothing is erased)."""
        proc = self.get(instance_id)
        async with proc.ops:
            if proc.retired or self._procs.get(instance_id) is not proc:
                raise not_found("instance", instance_id)
            self.refuse_if_satellites(proc, "deleting it")
            # From here nothing starts it again: the restart policy, a port retry, autostart.
            proc.retired = True
            try:
                self._cancel_restart(instance_id)
                await proc.stop("deleting the instance")
                if proc.state not in STOPPED_STATES:
                    raise AikoreError("instance_running", "instance is still running; stop it first", 409)
                return await _to_the_end(self._remove(proc))
            except BaseException:
                if self._procs.get(instance_id) is proc:
                    proc.retired = False
                raise

    async def _remove(self, proc: InstanceProcess) -> tuple[Instance, Path | None]:
        # Folder aside first (atomically, under a name that says what it is for), then the row,
        # then the trash: a crash at any point leaves what the next start completes.
        async with self._registry:
            instance = proc.instance
            # Again under the lock: a satellite created while this one was stopping.
            self.refuse_if_satellites(proc, "deleting it")
            with _storage_errors():
                moved = self.workspace.begin_delete(instance.name, instance.id)
            crashpoints.reach("delete:folder")
            try:
                await self.store.delete_instance(instance.id)
            except BaseException:
                self.workspace.undo_delete(moved, instance.name)
                raise
            crashpoints.reach("delete:row")
            del self._procs[instance.id]
            try:
                retired = self.workspace.trash(moved, instance.name)
            except OSError as exc:
                log.warning("instance %r: its folder stays at %s until the next start (%s)", instance.name, moved, exc)
                retired = moved
        self.events.publish(InstanceDeleted(instance))
        await proc.close()
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
        with _storage_errors():
            self.workspace.write_script(instance.name, content)
        # Header edits (proxy mode, health path) change how the instance is routed: tell listeners.
        self.publish(instance)
        return instance

    def _check_free(self, name: str | None, public_port: int | None, exclude_id: int | None) -> None:
        others = [i for i in self.instances() if i.id != exclude_id]
        if name is not None and name in self._reserved:
            raise AikoreError("name_taken", f"name: a copy named {name!r} is being made", 409, field="name")
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

    # -- satellites and copies ----------------------------------------------------------------

    def satellites(self, parent_id: int) -> list[Instance]:
        """The instances that run ``parent_id``'s app and environment."""
        return [i for i in self.instances() if i.parent_id == parent_id]

    def parent_of(self, instance: Instance) -> Instance | None:
        """A satellite's parent (whose install folder it launches from); None for other instances."""
        if instance.parent_id is None:
            return None
        proc = self._procs.get(instance.parent_id)
        return proc.instance if proc is not None else None

    def refuse_if_satellites(self, proc: InstanceProcess, doing: str) -> None:
        """A 409 naming the satellites that run on this instance's app and environment."""
        names = [i.name for i in self.satellites(proc.id)]
        if names:
            raise AikoreError(
                "has_satellites",
                f"{proc.instance.name} has satellites running on its app and environment "
                f"({', '.join(names)}); delete them before {doing}",
                409,
            )

    def refuse_reinstall(self, instance_id: int, doing: str) -> None:
        """Rebuilding, updating or rolling back changes the install: never a satellite's (it has none of
        its own), nor a parent's while satellites run on it."""
        proc = self.get(instance_id)
        parent = self.parent_of(proc.instance)
        if parent is not None:
            raise AikoreError(
                "satellite_has_no_environment",
                f"{proc.instance.name} is a satellite of {parent.name} and has no app or environment of its own; "
                f"{doing} {parent.name} instead (after deleting its satellites)",
                409,
            )
        self.refuse_if_satellites(proc, f"{doing} it")

    def _refuse_if_satellites_active(self, proc: InstanceProcess, doing: str) -> None:
        active = [i.name for i in self.satellites(proc.id) if self._procs[i.id].state not in STOPPED_STATES]
        if active:
            raise AikoreError(
                "satellites_active",
                f"satellites of {proc.instance.name} are running ({', '.join(active)}); stop them before {doing}",
                409,
            )

    async def create_satellite(self, parent_id: int, fields: dict[str, Any]) -> Instance:
        """A new instance that launches its parent's script on the parent's app and environment."""
        parent = self.get(parent_id)
        async with self._registry:
            if parent.retired:
                raise not_found("instance", parent_id)
            if parent.instance.parent_id is not None:
                raise AikoreError(
                    "satellite_of_satellite",
                    f"{parent.instance.name} is itself a satellite; make a satellite of its parent instead",
                    409,
                )
            self._check_free(fields["name"], fields.get("public_port"), exclude_id=None)
            with _storage_errors():
                staging = self.workspace.prepare(fields["name"], self.workspace.script_path(parent.instance.name))
            fields = {**fields, "blueprint": parent.instance.blueprint, "parent_id": parent_id}
            return await _to_the_end(self._create(fields, staging))

    async def stage(self, name: str, public_port: int | None, script: Path) -> Path:
        """copies.Host: a staging folder with ``script``, its name held until ``release``."""
        async with self._registry:
            self._check_free(name, public_port, exclude_id=None)
            with _storage_errors():
                staging = self.workspace.prepare(name, script)
            self._reserved.add(name)
            return staging

    async def add_staged(self, fields: dict[str, Any], staging: Path) -> Instance:
        """copies.Host: the row for a built staging folder, and the folder into place."""
        async with self._registry:
            self._reserved.discard(fields["name"])
            if self._closing:
                raise AikoreError("shutting_down", "AiKore is shutting down", 503)
            parent_id = fields.get("parent_id")
            if parent_id is not None and (parent_id not in self._procs or self._procs[parent_id].retired):
                raise AikoreError("parent_gone", "the satellite's parent was deleted meanwhile", 409)
            self._check_free(fields["name"], fields.get("public_port"), exclude_id=None)
            return await _to_the_end(self._create(fields, staging))

    def release(self, name: str) -> None:
        self._reserved.discard(name)

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        return self._spawn(coro)

    # -- actions ----------------------------------------------------------------------------

    async def start(self, instance_id: int, rebuild: bool = False) -> Instance:
        proc = self.get(instance_id)
        # Under the instance's operations lock: a rename or delete cannot slip between reading the
        # name and spawning; other instances wait for nothing.
        async with proc.ops:
            self._refuse_if_gone(proc)
            if rebuild:
                self.refuse_reinstall(proc.id, "rebuilding")
            await self._forget_restart(instance_id)
            proc.failures = 0
            await proc.start(rebuild=rebuild, note="rebuilding the environment" if rebuild else None)
        return proc.instance

    async def stop(self, instance_id: int) -> Instance:
        """Begin stopping; returns once the instance is ``stopping`` (or already stopped).

        After any operation on the instance under way (a restart stops what it started).
        """
        proc = self.get(instance_id)
        await self._forget_restart(instance_id)
        if proc.state in ACTIVE_STATES or proc.ops.locked():

            async def stop_in_turn() -> None:
                async with proc.ops:
                    await proc.stop()

            await self._answer_when_moved(proc, stop_in_turn())
        return proc.instance

    async def restart(self, instance_id: int, rebuild: bool = False) -> Instance:
        """Stop (if active) then start; returns once the state moved."""
        proc = self.get(instance_id)
        self._refuse_if_gone(proc)
        if rebuild:
            self.refuse_reinstall(proc.id, "rebuilding")
        await self._forget_restart(instance_id)
        proc.failures = 0
        note = "rebuilding the environment" if rebuild else None

        async def stop_then_start() -> None:
            # One operation: a delete asked meanwhile waits for it, then stops what it started.
            async with proc.ops:
                self._refuse_if_gone(proc)
                await proc.stop("restarting" if not rebuild else "rebuilding")
                self._refuse_if_gone(proc)
                await proc.start(rebuild=rebuild, note=note)

        await self._answer_when_moved(proc, stop_then_start())
        return proc.instance

    async def while_stopped(
        self, instance_id: int, work: Callable[[Instance], Awaitable[None]], note: str, reason: str
    ) -> Instance:
        """Stop the instance if active, run ``work`` while none of it runs, then start it: one operation.

        An app update or rollback changes files the running app holds open; nothing of the instance
        may run meanwhile. If ``work`` fails the instance stays stopped and the error goes up.
        """
        proc = self.get(instance_id)
        self._refuse_if_gone(proc)
        await self._forget_restart(instance_id)
        async with proc.ops:
            self._refuse_if_gone(proc)
            await proc.stop(reason)
            await work(proc.instance)
            self._refuse_if_gone(proc)
            proc.failures = 0
            await proc.start(note=note)
        return proc.instance

    def instance_pids(self) -> dict[int, tuple[int, ...]]:
        """Instance id -> root pids (the app's group first, then companions) of live instances.

        The monitor counts every tree as the instance's, so a persistent desktop's encoder and
        browser show up in its usage.
        """
        return {
            iid: (proc.groups[MAIN].handle.pid, *(g.handle.pid for role, g in proc.groups.items() if role != MAIN))
            for iid, proc in self._procs.items()
            # A Slurm job's processes are on its node: no pid of this machine to sample.
            if proc.state in ACTIVE_STATES and MAIN in proc.groups and not proc.groups[MAIN].remote
        }

    def add_companion(self, factory: CompanionFactory) -> None:
        """Run ``factory``'s command with every start, as part of the instance (see CompanionSpec)."""
        self.companions.append(factory)

    # -- process.Host -----------------------------------------------------------------------

    def publish(self, instance: Instance) -> None:
        self.events.publish(InstanceChanged(instance, self.runtime(instance)))

    def launcher(self, instance: Instance) -> OsKit | Slurm:
        """This machine's OS seam, or Slurm for an instance that chose a partition."""
        if instance.slurm_partition is None:
            return self.kit
        if self.slurm is None:
            raise AikoreError("slurm_disabled", f"{instance.name} runs on Slurm partition {instance.slurm_partition}, "
                              "but AiKore runs without --slurm", 409, field="slurm_partition")
        return self.slurm

    def plan_restart(self, proc: InstanceProcess, exit_code: int | None) -> RestartPlan:
        """Restart policy: what an ``on-failure`` instance's failure leads to (nothing is done yet)."""
        if proc.instance.restart_policy != "on-failure":
            return RestartPlan()
        if exit_code == 0:
            return RestartPlan("exited cleanly; on-failure does not restart it")
        failures = proc.failures
        if proc.ready_at is not None and self.kit.monotonic() - proc.ready_at >= self.backoff.stable_after:
            failures = 0
        failures += 1
        if failures > self.backoff.max_attempts:
            return RestartPlan(f"restart policy gave up after {self.backoff.max_attempts} attempts in a row",
                               failures=failures)
        delay = self.backoff.delay(failures)
        note = f"restarting in {delay:g} s (attempt {failures} of {self.backoff.max_attempts})"
        return RestartPlan(note, attempt=failures, delay=delay, failures=failures)

    def schedule_restart(self, proc: InstanceProcess, plan: RestartPlan) -> None:
        """Carry out a plan once its failure is recorded: the next attempt, kept in the database too."""
        if plan.failures:
            proc.failures = plan.failures
        if not plan.attempt or proc.retired or self._closing:
            return
        self._cancel_restart(proc.id)
        self._restarts[proc.id] = asyncio.create_task(
            self._restart_later(proc, plan.delay, plan.attempt, due=time.time() + plan.delay)
        )

    def stopped(self, instance: Instance) -> None:
        for callback in self.on_stop:
            try:
                callback(instance)
            except Exception:
                log.exception("supervisor callback %r failed", callback)

    # -- internals --------------------------------------------------------------------------

    def _refuse_if_gone(self, proc: InstanceProcess) -> None:
        if proc.retired:
            raise not_found("instance", proc.id)
        if self._closing:
            raise AikoreError("shutting_down", "AiKore is shutting down; start it again later", 503)

    async def _restart_later(self, proc: InstanceProcess, delay: float, attempt: int, due: float | None = None) -> None:
        if due is not None:
            try:
                # Kept until it happens or is cancelled: an AiKore crash meanwhile does not lose it.
                await self.pending.save(PendingRestart(proc.id, due, attempt))
            except StorageError as exc:
                log.warning("instance %s: pending restart not kept across a crash: %s", proc.id, exc.message)
        await self.kit.sleep(delay)
        async with proc.ops:
            if self._restarts.get(proc.id) is asyncio.current_task():
                del self._restarts[proc.id]
            if (
                proc.retired
                or self._closing
                or proc.state != ERROR
                or self._procs.get(proc.id) is not proc
                or proc.instance.restart_policy != "on-failure"
            ):
                return
            with contextlib.suppress(StorageError):
                await self.pending.remove(proc.id)
            try:
                await proc.start(note=f"restart attempt {attempt} of {self.backoff.max_attempts} after a failure")
            except AikoreError as exc:
                log.warning("restart of instance %s: %s", proc.id, exc.message)

    def _cancel_restart(self, instance_id: int) -> None:
        task = self._restarts.pop(instance_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _forget_restart(self, instance_id: int) -> None:
        """Cancel a pending restart, here and in the database (best effort: it only ever starts an
        instance that is in ``error`` with the policy on)."""
        self._cancel_restart(instance_id)
        with contextlib.suppress(StorageError):
            await self.pending.remove(instance_id)

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


@contextlib.contextmanager
def _storage_errors() -> Any:
    """A file operation in the data dir that failed for lack of space or write access: a 507/503."""
    try:
        yield
    except OSError as exc:
        fault = faults.from_os(exc)
        if fault is None:
            raise
        raise fault from exc


async def _to_the_end(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to its end even if the caller is cancelled meanwhile (a client went away):
    a row and its folder must not part halfway. The cancellation goes on once it is done."""
    task = asyncio.ensure_future(coro)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await task
        raise
