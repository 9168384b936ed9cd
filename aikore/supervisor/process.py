"""One managed instance: its state machine, its locks, its watcher task and its process groups.

``change_state`` is the only writer of an instance's state: it checks the transition against
``states.TRANSITIONS``, writes the DB row, and only then changes the state in memory and publishes
the instance (the route table listens, so "running" is published only once the health path
answered). A write the database refuses (full disk, read-only file) changes nothing: the error
goes up, and the watcher, which notices exits, readiness and the ready timeout, tries again.
Every transition sequence holds the instance's ``lock``; whole operations (start, restart,
delete, rename) hold its ``ops`` lock, so they never interleave on one instance and never wait for
another instance.

A start records its launches before it spawns them, then their pids, then the ``starting`` row;
a crash between any two steps leaves records the next AiKore follows to what was spawned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aikore.config import Settings
from aikore.errors import AikoreError
from aikore.store.db import Store
from aikore.store.faults import StorageError
from aikore.store.instance import Instance
from aikore.store.workspace import CONF_DIR, OUTPUT_DIR, Workspace
from aikore.supervisor import crashpoints, logwriter
from aikore.supervisor.events import Runtime
from aikore.supervisor.logs import MAIN_LOG, InstanceLog, this_run
from aikore.supervisor.oskit import MARKER, Exit, Handle, OsKit, Owner
from aikore.supervisor.phases import CAUSE_LINES, Progress, failure_cause, read_progress
from aikore.supervisor.ports import PortPool, PortsExhausted, is_free
from aikore.supervisor.records import MAIN, GroupRecord, GroupRecords
from aikore.supervisor.slurm import STOPPED_BY_SLURM, JobHandle, JobRequest, Slurm, SlurmError
from aikore.supervisor.states import ACTIVE_STATES, ERROR, RUNNING, STARTING, STOPPED, STOPPING, can_change

log = logging.getLogger(__name__)

# Exits are noticed within this (own children and adopted ones alike): "error within a second".
WATCH_INTERVAL = 0.2
PROBE_INTERVAL = 0.5
# After a crash, leftovers of the tree get this long after SIGTERM (the main process is gone).
CRASH_CLEANUP_GRACE = 2.0
LAST_LINES = 20
_MESSAGE_MAX = 8000
_LINE_MAX = 300
# Starts retried on another port when another program took the reserved one meanwhile.
PORT_RETRIES = 3
# A change the database refused (full disk, read-only file) is tried again this often.
STORE_RETRY = 1.0
INTERRUPTED_START = "a start was interrupted by an AiKore crash; what it had started was stopped"
# Never handed to instances: they are AiKore's login secrets.
_SECRET_ENV = frozenset({"AIKORE_TOKEN", "AIKORE_PASSWORD"})


@dataclass(frozen=True)
class CompanionSpec:
    """A command supervised as part of an instance (e.g. a persistent-mode desktop).

    It runs in its own session under its own logwriter (``logs/<role>.log``), is started after the
    main process, stopped and re-adopted with it; if it dies, the instance fails as a whole.
    ``port`` is stored for re-adoption, where it is re-reserved in the supervisor's PortPool under
    the owner ``"<instance name>/<role>"``. With ``ready_path`` the companion is part of the
    instance's readiness: it is ``running`` only once that path answers on ``port`` too.
    """

    role: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    port: int | None = None
    # Added to the main process's environment (a persistent desktop app gets its DISPLAY).
    main_env: Mapping[str, str] = field(default_factory=dict)
    ready_path: str | None = None
    # Written to the instance's row with the start (the desktop's Selkies port).
    row_fields: Mapping[str, Any] = field(default_factory=dict)


# Called at each start with the instance and its environment; returns None to add nothing.
CompanionFactory = Callable[[Instance, Mapping[str, str]], CompanionSpec | None]


@dataclass(frozen=True)
class RestartPlan:
    """What the restart policy makes of a failure: a note for the message, and a restart or not.

    Decided before the ``error`` row is written, carried out (``Host.schedule_restart``) only once
    it is: a failure the database refused to record is retried without counting twice.
    """

    note: str | None = None
    attempt: int = 0
    delay: float = 0.0
    failures: int = 0


class Host(Protocol):
    """What an instance process needs from the supervisor that owns it."""

    settings: Settings
    store: Store
    records: GroupRecords
    workspace: Workspace
    kit: OsKit
    ports: PortPool
    companions: list[CompanionFactory]

    def publish(self, instance: Instance) -> None: ...

    def launcher(self, instance: Instance) -> OsKit | Slurm: ...

    def plan_restart(self, proc: InstanceProcess, exit_code: int | None) -> RestartPlan: ...

    def schedule_restart(self, proc: InstanceProcess, plan: RestartPlan) -> None: ...

    def runtime(self, instance: Instance) -> Runtime: ...

    def stopped(self, instance: Instance) -> None: ...

    def parent_of(self, instance: Instance) -> Instance | None: ...


@dataclass(frozen=True)
class Launch:
    """One command to run as a process group of the instance, with its identity decided up front."""

    role: str
    argv: Sequence[str]
    cwd: Path
    env: Mapping[str, str]
    banner: str
    port: int | None
    ready_path: str | None
    launch_id: str
    cgroup: str | None
    # Where a Slurm launch asks to run (None: on this machine).
    request: JobRequest | None = None

    def record(self, instance_id: int) -> GroupRecord:
        """The record stored before it is spawned: no pid yet."""
        return GroupRecord(instance_id, self.role, None, None, self.launch_id, self.port, self.cgroup)


@dataclass
class ProcessGroup:
    """One command run under the logwriter in a session of its own: spawned, watched, adopted, stopped."""

    role: str
    handle: Handle
    launch_id: str
    log: InstanceLog
    port: int | None = None
    ready_path: str | None = None
    cgroup: str | None = None

    @classmethod
    def spawn(cls, kit: OsKit, launch: Launch, log: InstanceLog, settings: Settings) -> ProcessGroup:
        wrapped = _under_logwriter(launch, log, settings)
        handle = kit.spawn(wrapped, launch.cwd, {**launch.env, MARKER: launch.launch_id}, log.dir / "logwriter.err")
        return cls(launch.role, handle, launch.launch_id, log, launch.port, launch.ready_path, launch.cgroup)

    @classmethod
    async def submit(
        cls, slurm: Slurm, launch: Launch, log: InstanceLog, settings: Settings, name: str
    ) -> ProcessGroup:
        """The same command as a Slurm batch job; the job writes the same log on the shared data dir."""
        assert launch.request is not None
        handle = await slurm.submit(
            _under_logwriter(launch, log, settings), launch.cwd, {**launch.env, MARKER: launch.launch_id}, log.dir,
            launch.request, name, launch.launch_id,
        )
        return cls(launch.role, handle, launch.launch_id, log, launch.port, launch.ready_path, launch.cgroup)

    @property
    def remote(self) -> bool:
        return isinstance(self.handle, JobHandle)

    def writer_pid(self) -> int | None:
        """The logwriter's pid, which its phase file names (a job's is on its node, once it runs)."""
        if isinstance(self.handle, JobHandle):
            endpoint = self.handle.endpoint()
            return endpoint.pid if endpoint is not None else None
        return self.handle.pid

    def identity(self) -> dict[str, Any]:
        """The row's fields naming what runs: a local pid, or a Slurm job (the route's node comes later)."""
        if isinstance(self.handle, JobHandle):
            return {"pid": None, "pid_create_time": None, "slurm_job_id": self.handle.pid, "node": None,
                    "node_address": None}
        return {"pid": self.handle.pid, "pid_create_time": self.handle.create_time, "slurm_job_id": None,
                "node": None, "node_address": None}

    def record(self, instance_id: int) -> GroupRecord:
        return GroupRecord(
            instance_id, self.role, self.handle.pid, self.handle.create_time, self.launch_id, self.port, self.cgroup
        )

    def owner(self) -> Owner:
        return Owner(self.handle, self.launch_id, self.cgroup)

    def exit_code(self) -> int | None:
        ended = self.handle.poll()
        if ended is None:
            return None
        return ended.code if ended.code is not None else self.log.last_exit(self.handle.pid)


def _under_logwriter(launch: Launch, log: InstanceLog, settings: Settings) -> list[str]:
    # By file path, isolated: the logwriter is stdlib-only and must not depend on how aikore
    # is installed or on PYTHON* variables meant for the instance's own Python.
    return [
        sys.executable, "-I", logwriter.__file__,
        "--log", str(log.path), "--max-bytes", str(settings.log_max_bytes),
        "--backups", str(settings.log_backups), "--status", str(log.status_path),
        "--banner", launch.banner, "--phase", str(log.phase_path),
        *(["--cgroup", launch.cgroup] if launch.cgroup else []),
        "--", *launch.argv,
    ]


def instance_env(
    settings: Settings, instance: Instance, folder: Path, port: int, rebuild: bool,
    base: Mapping[str, str] | None = None, satellite_of: tuple[str, Path] | None = None,
) -> dict[str, str]:
    """The environment contract of DESIGN.md on top of AiKore's own environment (minus secrets).

    ``satellite_of``: (parent name, parent folder) of a satellite, which runs from its parent's
    install folder (INSTANCE_CONF_DIR) with its own settings folder (AIKORE_OWN_CONF_DIR).

    The instance's extra variables (its ``env`` setting) go under the contract's, and its launch
    arguments into AIKORE_LAUNCH_ARGS.
    """
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in _SECRET_ENV}
    root_path = f"/app/{instance.name}"
    # Python apps otherwise buffer their output and the log lags behind what they did.
    env.setdefault("PYTHONUNBUFFERED", "1")
    # The instance's own extra variables, under the contract's (validation refuses those names).
    env.update(instance.env)
    env.update(
        {
            # Each argument ended by a line break (none holds one), so a lone empty argument is
            # still one: aik_launch appends them to the app's.
            "AIKORE_LAUNCH_ARGS": "".join(f"{arg}\n" for arg in instance.launch_args),
            "WEBUI_PORT": str(port),
            "WEBUI_HOST": "127.0.0.1",
            "INSTANCE_NAME": instance.name,
            "INSTANCE_ID": str(instance.id),
            "INSTANCE_CONF_DIR": str((satellite_of[1] if satellite_of else folder) / CONF_DIR),
            "AIKORE_OWN_CONF_DIR": str(folder / CONF_DIR),
            "INSTANCE_OUTPUT_DIR": str(folder / OUTPUT_DIR),
            "AIKORE_ROOT_PATH": root_path,
            "GRADIO_ROOT_PATH": root_path,
            "CUDA_VISIBLE_DEVICES": instance.gpu_ids,
            "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
            "AIKORE_DATA_DIR": str(settings.data_dir),
            "AIKORE_MODELS_DIR": str(settings.models_dir),
            "AIKORE_REBUILD_ENV": "1" if rebuild else "0",
            "AIKORE_PYTHON": sys.executable,
        }
    )
    if satellite_of is not None:
        env["AIKORE_SATELLITE_OF"] = satellite_of[0]
    return env


class InstanceProcess:
    """The supervised life of one instance."""

    def __init__(self, instance: Instance, host: Host) -> None:
        # The one in-memory copy of the instance (the row is written first, then this).
        self.instance = instance
        self.host = host
        self.state = instance.status
        # Held by every transition sequence (a start, a stop, a failure's cleanup).
        self.lock = asyncio.Lock()
        # Held by whole operations on this instance (start, restart, delete, rename), never by the
        # registry: one instance's slow stop holds up nothing of another.
        self.ops = asyncio.Lock()
        # Set once a delete begins: nothing starts the instance again (restart policy, port retry).
        self.retired = False
        self.groups: dict[str, ProcessGroup] = {}
        self.port: int | None = None
        self.health = "/"
        self.ready_at: float | None = None
        # The install phase the start's script reported (phases.py): while starting, and kept in
        # error when the start failed in it.
        self.progress: Progress | None = None
        self.failures = 0
        self._port_retries = 0
        self._deadline = 0.0
        self._next_probe = 0.0
        self._watcher: asyncio.Task[None] | None = None
        # The last transition of a stop or failure that the database refused, retried by _finisher.
        self._unfinished: tuple[str, dict[str, Any], Callable[[Instance], None] | None] | None = None
        self._finisher: asyncio.Task[None] | None = None
        self._store_trouble = False
        self._changed = asyncio.Event()

    # -- the one writer of the state --------------------------------------------------------

    @property
    def id(self) -> int:
        return self.instance.id

    @property
    def kit(self) -> OsKit | Slurm:
        """The launcher of this instance's processes: this machine's OS seam, or Slurm."""
        return self.host.launcher(self.instance)

    @property
    def remote(self) -> bool:
        """Whether its processes run on a cluster node, not on this machine."""
        return isinstance(self.kit, Slurm)

    async def change_state(self, new: str, **fields: Any) -> Instance:
        """Move to ``new`` (an allowed transition only): store it with ``fields``, then hold it and publish.

        If the database refuses the write, nothing changes (``StorageError`` goes up).
        """
        if not can_change(self.state, new):
            raise RuntimeError(f"instance {self.id}: transition {self.state} -> {new} is not allowed")
        instance = await self.write(status=new, **fields)
        log.info("instance %s: %s -> %s", self.id, self.state, new)
        self.state = new
        self.host.publish(instance)
        self._changed.set()
        self._changed = asyncio.Event()
        return instance

    async def write(self, **fields: Any) -> Instance:
        """Store ``fields`` in the row, then apply them to the in-memory instance."""
        stamped = await self.host.store.update_instance(self.instance, **fields)
        # Applied to the current copy: a settings change made while the row was written stays.
        self.instance = self.instance.replace(**fields, updated_at=stamped.updated_at)
        return self.instance

    def next_change(self) -> asyncio.Event:
        """An event set at the next state change (take it before starting the action to watch)."""
        return self._changed

    # -- actions ----------------------------------------------------------------------------

    async def start(self, rebuild: bool = False, note: str | None = None) -> Instance | None:
        """Spawn the instance and return at once in ``starting``; the watcher takes it from there."""
        self._refuse_if_active()
        async with self.lock:
            self._refuse_if_active()
            if self.retired:
                raise AikoreError("instance_deleted", "the instance is being deleted", 409)
            instance = self.instance
            try:
                # A job's port is chosen on its node, once it runs.
                port = None if self.remote else self.host.ports.reserve(instance.name)
            except PortsExhausted as exc:
                return await self._spawn_failed(str(exc))
            try:
                groups, row_fields = await self._launch_all(instance, port, rebuild)
            except (StorageError, asyncio.CancelledError):
                # Nothing runs: the launch could not be recorded, or the start was cancelled.
                self.host.ports.release(port, instance.name)
                raise
            except Exception as exc:
                # OSError from exec, sbatch refusing the job, or a companion factory that failed:
                # either way nothing runs.
                if not isinstance(exc, OSError | SlurmError):
                    log.exception("instance %s: start failed", self.id)
                self.host.ports.release(port, instance.name)
                return await self._spawn_failed(f"cannot start: {exc}")
            main = groups[MAIN]
            self.groups, self.port, self.progress = groups, port, None
            self.health = self.host.runtime(instance).health
            try:
                crashpoints.reach("start:spawned")
                # STOPPED/ERROR -> STARTING
                started = await self.change_state(
                    STARTING, **main.identity(), port=port, exit_code=None,
                    status_message=note or (f"queued: Slurm job {main.handle.pid} submitted" if main.remote else None),
                    **row_fields,
                )
            except BaseException:
                # Not recorded as started, so nothing of it may run.
                self.groups, self.port = {}, None
                await asyncio.shield(self._abandon(list(groups.values())))
                self.host.ports.release(port, instance.name)
                raise
            self._watch()
            return started

    async def stop(self, reason: str = "stopping on request") -> Instance | None:
        """Stop every process of the instance: SIGTERM, stop_timeout, SIGKILL, stragglers."""
        async with self.lock:
            if self.state not in ACTIVE_STATES:
                return None
            await self._cancel_watcher()
            if self.state != STOPPING:
                self.progress = None
                try:
                    # STARTING/RUNNING -> STOPPING
                    await self.change_state(STOPPING, status_message=reason)
                except BaseException:
                    # Nothing changed: it runs on, watched as before.
                    self._watch(keep_deadline=True)
                    raise
            code = await self._terminate(self.host.settings.stop_timeout)
            # STOPPING -> STOPPED
            return await self._finish(
                STOPPED, self.host.stopped, pid=None, pid_create_time=None, port=None, exit_code=code,
                status_message=None,
            )

    async def adopt(self) -> bool:
        """Take over an instance a previous AiKore left active: keep it if its process is still it.

        Returns True when it was being stopped and is still there: the caller finishes that stop
        (in the background, so a long grace period holds nothing up).
        """
        async with self.lock:
            instance = self.instance
            self.state = instance.status
            records = await self.host.records.load(self.id)
            if MAIN not in records and instance.pid and instance.pid_create_time:
                records[MAIN] = GroupRecord(self.id, MAIN, instance.pid, instance.pid_create_time, "", instance.port)
            folder = self.host.workspace.path(instance.name)
            for role, rec in records.items():
                handle = self._adopt_handle(rec, folder)
                if handle is not None:
                    self.groups[role] = ProcessGroup(
                        role, handle, rec.launch_id, self._log(folder, role), rec.port, cgroup=rec.cgroup
                    )
            self.port = instance.port
            main = records.get(MAIN)
            if MAIN not in self.groups:
                await self._adopt_gone(instance, main, list(records.values()))
                return False
            if instance.port is not None and not self.remote:
                self.host.ports.adopt(instance.port, instance.name)
            for role, group in self.groups.items():
                if role != MAIN and group.port is not None and not self.remote:
                    # Companions reserve their ports as "<name>/<role>" (see CompanionSpec).
                    self.host.ports.adopt(group.port, f"{instance.name}/{role}")
            self.health = self.host.runtime(instance).health
            if self.remote:
                log.info("instance %s (%s): re-adopted Slurm job %s", self.id, instance.name, instance.slurm_job_id)
            else:
                log.info("instance %s (%s): re-adopted pid %s", self.id, instance.name, instance.pid)
            lost = sorted(set(records) - set(self.groups))
            if lost and self.state != STOPPING:
                # Part of the instance died while AiKore was away: it fails as a whole, as it would have.
                self.host.publish(instance)
                await self._fail(f"{', '.join(lost)} exited while AiKore was not running", None)
                return False
            if self.state == STOPPING:
                return True
            if self.state == RUNNING:
                self.ready_at = self.host.kit.monotonic()
            # The route table is rebuilt from events: announce the adopted state once.
            self.host.publish(instance)
            self._watch()
            return False

    async def roll_back_interrupted_start(self) -> None:
        """Launches recorded for an instance whose row never said it started: stop what they left.

        A start records its launches, spawns them, stores their pids, and only then writes
        ``starting``; AiKore dying in between leaves records and perhaps processes of an instance
        the row calls stopped. They are stopped (found by pid, marker and cgroup), so a later
        start makes the one copy.
        """
        async with self.lock:
            if self.state in ACTIVE_STATES:
                return
            records = list((await self.host.records.load(self.id)).values())
            kit = self.kit
            folder = self.host.workspace.path(self.instance.name)
            handles = [self._adopt_handle(r, folder) for r in records]
            found = sum([await kit.leftovers(r.launch_id, r.cgroup) for r in records])
            await asyncio.gather(
                *(kit.terminate(h, r.launch_id, CRASH_CLEANUP_GRACE, r.cgroup)
                  for h, r in zip(handles, records, strict=True))
            )
            await self.host.records.clear(self.id)
            if found:
                log.warning("instance %s: stopped %d process(es) of a start AiKore died during", self.id, found)
                await self.write(status_message=INTERRUPTED_START)

    async def close(self) -> None:
        """Stop watching and retrying (AiKore is exiting); the processes are not touched."""
        await self._cancel_watcher()
        task, self._finisher = self._finisher, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- internals --------------------------------------------------------------------------

    def _satellite_of(self, instance: Instance) -> tuple[str, Path] | None:
        if instance.parent_id is None:
            return None
        parent = self.host.parent_of(instance)
        if parent is None:
            raise AikoreError("parent_gone", f"{instance.name} is a satellite of an instance that is gone", 409)
        return parent.name, self.host.workspace.path(parent.name)

    def _refuse_if_active(self) -> None:
        if self.state in ACTIVE_STATES:
            raise AikoreError("instance_active", f"instance is {self.state}; stop it first", 409)

    def _adopt_handle(self, rec: GroupRecord, folder: Path) -> Handle | None:
        """The recorded process (or Slurm job) if it is still the one that was started."""
        if rec.pid is None or rec.create_time is None:
            return None
        kit = self.kit
        if isinstance(kit, Slurm):
            return kit.adopt_job(rec.pid, rec.create_time, rec.launch_id, self._log(folder, rec.role).dir)
        return kit.adopt(rec.pid, rec.create_time)

    def _log(self, folder: Path, role: str) -> InstanceLog:
        return InstanceLog(folder, self.host.settings.log_backups, MAIN_LOG if role == MAIN else role)

    def _plan(self, instance: Instance, port: int, rebuild: bool) -> tuple[list[Launch], dict[str, Any]]:
        kit, settings = self.kit, self.host.settings
        folder = self.host.workspace.path(instance.name)
        env = instance_env(settings, instance, folder, port or 0, rebuild, satellite_of=self._satellite_of(instance))
        banner = f"start of {instance.name}" + (" (rebuild: AIKORE_REBUILD_ENV=1)" if rebuild else "")
        request = _job_request(instance) if isinstance(kit, Slurm) else None
        if request is not None:
            # Slurm assigns the job's GPUs (gres); the job finds its node's address and port.
            env.pop("CUDA_VISIBLE_DEVICES", None)
            if instance.persistent_mode:
                raise AikoreError("persistent_on_slurm", "persistent mode runs on this machine only: "
                                  "clear slurm_partition or persistent_mode", 409, field="persistent_mode")
        # Asked before anything runs: a companion that cannot start stops the launch early, and
        # what companions add to the app's own environment (a desktop app's DISPLAY) is known.
        specs = [spec for factory in self.host.companions if (spec := factory(instance, env)) is not None]
        main_env = {**env, **{k: v for spec in specs for k, v in spec.main_env.items()}}

        def launch(role: str, argv: Sequence[str], cwd: Path, env: Mapping[str, str], banner: str,
                   port: int | None, ready_path: str | None) -> Launch:
            launch_id = uuid.uuid4().hex
            return Launch(role, argv, cwd, env, banner, port, ready_path, launch_id, kit.make_cgroup(launch_id),
                          request)

        launches = [launch(MAIN, ["bash", str(folder / "launch.sh")], folder, main_env, banner, port, None)]
        launches += [
            launch(spec.role, spec.argv, spec.cwd or folder, {**env, **spec.env},
                   f"start of {spec.role} for {instance.name}", spec.port, spec.ready_path)
            for spec in specs
        ]
        return launches, {k: v for spec in specs for k, v in spec.row_fields.items()}

    async def _launch_all(
        self, instance: Instance, port: int, rebuild: bool
    ) -> tuple[dict[str, ProcessGroup], dict[str, Any]]:
        """Record every launch, spawn it, record its pid; on any failure nothing is left running."""
        launches, row_fields = self._plan(instance, port, rebuild)
        records = self.host.records
        groups: dict[str, ProcessGroup] = {}
        try:
            # Recorded before anything runs: whatever a crash leaves from here on can be found.
            await records.clear(self.id)
            for launch in launches:
                await records.save(launch.record(self.id))
            crashpoints.reach("start:recorded")
            folder = self.host.workspace.path(instance.name)
            kit = self.kit
            for launch in launches:
                log_ = self._log(folder, launch.role)
                if isinstance(kit, Slurm):
                    group = await ProcessGroup.submit(kit, launch, log_, self.host.settings, instance.name)
                else:
                    group = ProcessGroup.spawn(kit, launch, log_, self.host.settings)
                groups[launch.role] = group
                crashpoints.reach("start:spawned-unrecorded")
                await records.save(group.record(self.id))
        except BaseException:
            # A companion could not start, or its pid could not be recorded: what runs goes.
            await asyncio.shield(self._abandon(list(groups.values()), launches))
            raise
        return groups, row_fields

    async def _abandon(self, groups: list[ProcessGroup], launches: Sequence[Launch] = ()) -> None:
        """Stop groups of a start that failed midway, drop their cgroups and (if it can) their records."""
        kit = self.kit
        spawned = {g.launch_id for g in groups}
        await asyncio.gather(
            *(kit.terminate(g.handle, g.launch_id, 0.0, g.cgroup) for g in groups),
            *(kit.terminate(None, la.launch_id, 0.0, la.cgroup) for la in launches
              if la.launch_id not in spawned and la.cgroup),
        )
        try:
            await self.host.records.clear(self.id)
        except StorageError:
            # The next start (or the next AiKore) clears them; nothing they name runs any more.
            log.warning("instance %s: records of an abandoned start stay until the database takes changes", self.id)

    async def _spawn_failed(self, message: str) -> Instance | None:
        self.progress = None
        # STOPPED/ERROR -> STARTING -> ERROR: the attempt is visible, then why it failed.
        await self.change_state(STARTING, pid=None, pid_create_time=None, port=None, exit_code=None)
        # Through _finish: if the database refuses the ERROR now, it is recorded later, never lost.
        return await self._finish(ERROR, self.host.stopped, status_message=message)

    def _watch(self, keep_deadline: bool = False) -> None:
        if not keep_deadline:
            self._deadline = self.host.kit.monotonic() + self.host.settings.ready_timeout
        self._watcher = asyncio.create_task(self._watch_loop(self.groups), name=f"aikore-watch-{self.id}")

    async def _cancel_watcher(self) -> None:
        task, self._watcher = self._watcher, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watch_loop(self, groups: dict[str, ProcessGroup]) -> None:
        try:
            await self._watch_steps(groups)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A watcher must not die silently: the instance would look alive forever.
            log.exception("instance %s: watcher failed; the instance is no longer watched", self.id)
            raise

    async def _watch_steps(self, groups: dict[str, ProcessGroup]) -> None:
        kit = self.host.kit
        self._next_probe = 0.0
        while True:
            try:
                if await self._watch_step(groups):
                    return
            except StorageError as exc:
                if self._unfinished is not None:
                    return  # the last transition is pending: the finisher records it
                # Nothing changed (the database refused the write): seen again, tried again.
                if not self._store_trouble:
                    log.warning("instance %s: cannot record a change yet (%s); retrying", self.id, exc.message)
                self._store_trouble = True
                await kit.sleep(STORE_RETRY)
                continue
            self._store_trouble = False
            await kit.sleep(WATCH_INTERVAL)

    async def _watch_step(self, groups: dict[str, ProcessGroup]) -> bool:
        """One look at the instance; True once this watcher's work is over."""
        for group in groups.values():
            ended = group.handle.poll()
            if ended is not None:
                await self._died(groups, group, ended)
                return True
        if self.state == STARTING:
            self._follow_progress(groups)
            now = self.host.kit.monotonic()
            if self.remote and not await self._job_listens(groups):
                # Time in Slurm's queue is not time the app takes to get ready.
                self._deadline = now + self.host.settings.ready_timeout
                return False
            if now >= self._deadline:
                await self._never_ready(groups)
                return True
            if now >= self._next_probe and self.port is not None:
                self._next_probe = now + PROBE_INTERVAL
                if await self._answers(groups):
                    await self._became_ready(groups)
        return False

    def _follow_progress(self, groups: dict[str, ProcessGroup]) -> None:
        """Publish a new install phase; while installing, the ready timeout waits (it counts from launch)."""
        main = groups.get(MAIN)
        if main is None:
            return
        pid = main.writer_pid()
        progress = read_progress(main.log.phase_path, pid) if pid is not None else None
        if progress != self.progress:
            self.progress = progress
            self.host.publish(self.instance)
        if progress is not None and progress.installing:
            self._deadline = self.host.kit.monotonic() + self.host.settings.ready_timeout

    def _phase_failure(self, main: ProcessGroup, exited: str) -> str:
        """``exited with code 128`` -> ``failed while cloning: could not resolve github.com (exit code 128)``."""
        pid = main.writer_pid()
        self.progress = (read_progress(main.log.phase_path, pid) if pid is not None else None) or self.progress
        if self.progress is None:
            return exited
        cause = failure_cause(main.log.tail(CAUSE_LINES))
        return f"failed while {self.progress.label}" + (f": {cause}" if cause else "") + f" ({exited})"

    async def _job_listens(self, groups: dict[str, ProcessGroup]) -> bool:
        """A Slurm job: say why it is queued; once it runs and wrote its endpoint, route to that node."""
        handle = groups[MAIN].handle
        assert isinstance(handle, JobHandle)
        reason = handle.queued()
        endpoint = handle.endpoint() if reason is None else None
        async with self.lock:
            if self.groups is not groups or self.state != STARTING:
                return False
            if reason is not None:
                message = f"queued: {reason}"
                if self.instance.status_message != message:
                    self.host.publish(await self.write(status_message=message))
                return False
            if endpoint is None:
                node = handle.node()
                message = f"running on {node}, waiting for the job to report its port" if node else None
                if message and self.instance.status_message != message:
                    self.host.publish(await self.write(status_message=message))
                return False
            if self.port != endpoint.port or self.instance.node_address != endpoint.host:
                self.port = endpoint.port
                self.host.publish(await self.write(
                    port=endpoint.port, node=endpoint.node, node_address=endpoint.host,
                    status_message=f"on {endpoint.node} ({endpoint.host}:{endpoint.port})",
                ))
        return True

    async def _answers(self, groups: dict[str, ProcessGroup]) -> bool:
        """Ready means the app's health path answers, and every companion that has a ready path.

        An answer counts only from a socket the launch's own processes listen on: a port another
        program took before the app could bind it does not make the instance ready.
        """
        assert self.port is not None
        # Any of the instance's groups may serve the app's port (a desktop-only app's companion).
        owners = [group.owner() for group in groups.values()]
        kit = self.kit
        if not await kit.probe(self.port, self.health, owners):
            return False
        for group in groups.values():
            if group.ready_path is not None and group.port is not None:
                if not await kit.probe(group.port, group.ready_path, owners):
                    return False
        return True

    async def _became_ready(self, groups: dict[str, ProcessGroup]) -> None:
        async with self.lock:
            if self.groups is not groups or self.state != STARTING:
                return
            self.progress = None
            # STARTING -> RUNNING
            await self.change_state(RUNNING, status_message=None)
            self.ready_at = self.host.kit.monotonic()
            self._port_retries = 0

    async def _died(self, groups: dict[str, ProcessGroup], group: ProcessGroup, ended: Exit) -> None:
        async with self.lock:
            if self.groups is not groups or self.state not in (STARTING, RUNNING):
                return
            code = ended.code if ended.code is not None else group.log.last_exit(group.handle.pid)
            if ended.stopped:
                await self._stopped_elsewhere(ended.reason or "stopped outside AiKore", code)
                return
            who = "" if group.role == MAIN else f"{group.role} "
            message = f"{who}exited with code {code}" if code is not None else f"{who}exited"
            message += f" ({ended.reason})" if ended.reason else ""
            if group.role == MAIN and self.state == STARTING:
                message = self._phase_failure(group, message)
            taken = await self._fail(message, code)
        if taken is not None:
            async with self.ops:
                with contextlib.suppress(AikoreError):
                    await self.start(note=f"port {taken} was taken by another program; retrying on another port")

    async def _stopped_elsewhere(self, reason: str, code: int | None) -> None:
        """Ended by a decision outside AiKore (a Slurm cancel or preemption): stopped, not failed."""
        # STARTING/RUNNING -> STOPPING: whatever the scheduler has not ended yet goes too.
        await self.change_state(STOPPING, status_message=reason)
        await self._terminate(min(self.host.settings.stop_timeout, CRASH_CLEANUP_GRACE))
        # STOPPING -> STOPPED
        await self._finish(STOPPED, self.host.stopped, pid=None, pid_create_time=None, port=None, exit_code=code,
                           status_message=reason)

    async def _never_ready(self, groups: dict[str, ProcessGroup]) -> None:
        async with self.lock:
            if self.groups is not groups or self.state != STARTING:
                return
            timeout = self.host.settings.ready_timeout
            path = self.health
            await self._fail(f"not ready: {path} did not answer below 500 within {timeout:g} s", None, stop=True)

    async def _fail(self, message: str, code: int | None, stop: bool = False) -> int | None:
        """Clean up whatever is left of the instance, then ERROR with the code and last log lines.

        Returns the port when the cause was another program taking the instance's port before it
        could listen (the bind check at reservation races with other programs): the caller then
        starts it again on another port, a few times, instead of applying the restart policy.
        A write the database refuses raises ``StorageError`` with the state unchanged (before the
        cleanup) or leaves the final ``error`` to the finisher (after it).
        """
        main = self.groups.get(MAIN)
        lines = this_run(main.log.tail(LAST_LINES)) if main is not None else []
        was_starting, port = self.state == STARTING, self.port
        if stop or await self._anything_left():
            if self.state != STOPPING:
                # STARTING/RUNNING -> STOPPING: the remaining processes are stopped before ERROR.
                await self.change_state(STOPPING, status_message=f"{message}; stopping what is left")
            grace = self.host.settings.stop_timeout
            ended = await self._terminate(grace if stop else min(grace, CRASH_CLEANUP_GRACE))
            # A ready timeout stops the launch itself: its code is the one the stop gave (143).
            code = code if code is not None else ended
        # Nothing of ours is left, so whoever listens on the port now is another program.
        local = port is not None and not self.remote
        taken = port if was_starting and not stop and local and not is_free(port) else None
        plan = RestartPlan()
        if taken is not None and self._port_retries < PORT_RETRIES:
            self._port_retries += 1
            note: str | None = f"port {taken} is taken by another program"
        else:
            taken = None
            plan = self.host.plan_restart(self, code)
            note = plan.note
        text = "; ".join(filter(None, [message, note]))
        if lines:
            text += "\nlast log lines:\n" + "\n".join(line[:_LINE_MAX] for line in lines)

        def after(instance: Instance) -> None:
            self.host.stopped(instance)
            self.host.schedule_restart(self, plan)

        # STARTING/RUNNING/STOPPING -> ERROR
        await self._finish(
            ERROR, after, pid=None, pid_create_time=None, port=None, exit_code=code, status_message=text[:_MESSAGE_MAX]
        )
        return taken

    async def _finish(self, new: str, after: Callable[[Instance], None] | None, **fields: Any) -> Instance:
        """The last transition of a stop or a failure; once it is stored, what the instance held is released.

        If the database refuses it, the instance stays as the database says (``stopping``, or still
        ``running`` for a crash with nothing to clean), ``StorageError`` goes up, and the finisher
        tries again until it is recorded.
        """
        try:
            instance = await self.change_state(new, **fields)
        except StorageError as exc:
            self._unfinished = (new, fields, after)
            if self._finisher is None or self._finisher.done():
                log.warning("instance %s: cannot record a change yet (%s -> %s: %s); retrying every %g s",
                            self.id, self.state, new, exc.message, STORE_RETRY)
                self._finisher = asyncio.create_task(self._finish_later(), name=f"aikore-finish-{self.id}")
            raise
        self._unfinished = None
        finisher, self._finisher = self._finisher, None
        if finisher is not None and finisher is not asyncio.current_task():
            finisher.cancel()
        await self._release()
        if after is not None:
            after(instance)
        return instance

    async def _finish_later(self) -> None:
        while True:
            await self.host.kit.sleep(STORE_RETRY)
            async with self.lock:
                if self._unfinished is None:
                    return
                new, fields, after = self._unfinished
                if not can_change(self.state, new):
                    self._unfinished = None
                    return
                with contextlib.suppress(StorageError):
                    await self._finish(new, after, **fields)
                    log.info("instance %s: recorded %s now that the database takes changes again", self.id, new)
                    return

    async def _anything_left(self) -> bool:
        for group in self.groups.values():
            if group.handle.poll() is None or await self.kit.leftovers(group.launch_id, group.cgroup):
                return True
        return False

    async def _terminate(self, grace: float) -> int | None:
        """Stop every group at once; returns the main process's exit code."""
        kit = self.kit
        groups = list(self.groups.values())
        await asyncio.gather(*(kit.terminate(g.handle, g.launch_id, grace, g.cgroup) for g in groups))
        main = self.groups.get(MAIN)
        return main.exit_code() if main is not None else None

    async def _release(self) -> None:
        self.host.ports.release(self.port, self.instance.name)
        for group in self.groups.values():
            self.kit.remove_cgroup(group.cgroup)
        self.groups, self.port, self.ready_at = {}, None, None
        try:
            await self.host.records.clear(self.id)
        except StorageError:
            # Harmless: they name processes that are gone; the next start or AiKore clears them.
            log.warning("instance %s: its launch records stay until the database takes changes again", self.id)

    async def _adopt_gone(self, instance: Instance, main: GroupRecord | None, records: list[GroupRecord]) -> None:
        """The stored process is not there (exited, or its pid now belongs to another process)."""
        kit = self.kit
        # Companions and escaped descendants of that launch may still run: they go too.
        await asyncio.gather(
            *(kit.terminate(self.groups[r.role].handle if r.role in self.groups else None, r.launch_id, 2.0, r.cgroup)
              for r in records if r.launch_id or r.cgroup)
        )
        folder = self.host.workspace.path(instance.name)
        code = self._log(folder, MAIN).last_exit(main.pid) if main is not None and main.pid is not None else None
        ended = None
        if isinstance(kit, Slurm) and main is not None and main.pid is not None:
            end = await kit.end_of(main.pid)
            code, ended = end.code, end.describe(main.pid)
            if end.state in STOPPED_BY_SLURM and self.state != STOPPING:
                # Cancelled or preempted meanwhile: stopped, as it would have been with AiKore there.
                self.host.publish(instance)
                await self._stopped_elsewhere(f"{ended} while AiKore was not running", code)
                return
        if self.state == STOPPING:
            # STOPPING -> STOPPED: it was being stopped when AiKore went away, and it is gone.
            await self._finish(STOPPED, None, pid=None, pid_create_time=None, port=None, exit_code=code)
            return
        if ended is not None:
            message = f"{ended}, exit code {code}, while AiKore was not running"
        elif code is not None:
            message = f"exited with code {code} while AiKore was not running"
        else:
            message = f"process {instance.pid} was gone when AiKore started (it exited, or the pid was reused)"
        plan = self.host.plan_restart(self, code)

        def after(failed: Instance) -> None:
            self.host.stopped(failed)
            self.host.schedule_restart(self, plan)

        # STARTING/RUNNING -> ERROR
        await self._finish(
            ERROR, after, pid=None, pid_create_time=None, port=None, exit_code=code,
            status_message="; ".join(filter(None, [message, plan.note])),
        )


def _job_request(instance: Instance) -> JobRequest:
    assert instance.slurm_partition is not None
    return JobRequest(instance.slurm_partition, instance.slurm_gpus, instance.slurm_node, instance.slurm_time_limit,
                      instance.slurm_account)
