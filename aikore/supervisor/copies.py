"""Copies of instances, made in the background while the source keeps running.

A copy is a new instance with the source's launch.sh and settings (a new name; no public port
unless one is given: ports are unique). ``fresh`` copies only those - its script installs its own
environment at its first start; ``copy`` also copies the source's ``config/`` folder, where every
blueprint installs its app and environment (``aikore.store.treecopy``: copy-on-write where the
filesystem allows, the environment's paths rewritten). Outputs and logs stay with the source.

A copy is built like a create: in a ``.creating-<name>.*`` staging folder (its name held by the
supervisor meanwhile), and only a finished one gets its row and moves into place; a cancelled or
failed copy removes its staging folder, and one a crash interrupted (no row) is discarded at the
next start. Progress goes out as ``CopyChanged`` events (at most a few a second).

Copying a satellite makes another satellite of the same parent (it has no environment to copy).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aikore.errors import AikoreError, not_found
from aikore.events import EventBus
from aikore.store import faults
from aikore.store.instance import CREATE_FIELDS, Instance
from aikore.store.treecopy import Cancelled, CopyFailed, Progress, TreeCopy, relocate
from aikore.store.workspace import CONF_DIR, Workspace

ENVIRONMENTS = ("fresh", "copy")
STATES = ("copying", "done", "failed", "cancelled")
# The settings a copy does not take from its source: its own name; a public port is unique.
_NOT_COPIED = frozenset({"name", "public_port"})
# Settings-like files of config/ a fresh copy keeps (the rest of config/ is the installed app).
FRESH_KEEPS = ("launch_args.txt",)
# Progress events at most this often; the last one always goes out.
_PROGRESS_EVERY = 0.25
# Finished jobs kept for GET /api/copies (a failure's message stays readable for a while).
_KEPT = 20


@dataclass(frozen=True)
class CopyJob:
    id: int
    source_id: int
    source_name: str
    name: str
    environment: str
    state: str = "copying"
    progress: Progress = field(default_factory=Progress)
    error: str | None = None
    instance_id: int | None = None
    started_at: float = 0.0
    finished_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.update(data.pop("progress"))
        return data


@dataclass(frozen=True, slots=True)
class CopyChanged:
    """A copy began, progressed or ended."""

    job: CopyJob


class Host(Protocol):
    """What copies need from the supervisor."""

    workspace: Workspace
    events: EventBus

    def instance(self, instance_id: int) -> Instance: ...

    async def stage(self, name: str, public_port: int | None, script: Path) -> Path: ...

    async def add_staged(self, fields: dict[str, Any], staging: Path) -> Instance: ...

    def release(self, name: str) -> None: ...

    def spawn(self, coro: Any) -> asyncio.Task[Any]: ...


class Copies:
    """The copy jobs of one supervisor."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._jobs: dict[int, CopyJob] = {}
        self._trees: dict[int, TreeCopy] = {}
        self._cancelled: set[int] = set()
        self._ids = itertools.count(1)

    def jobs(self) -> list[CopyJob]:
        return list(self._jobs.values())

    def job(self, job_id: int) -> CopyJob:
        job = self._jobs.get(job_id)
        if job is None:
            raise not_found("copy", job_id)
        return job

    async def start(self, source_id: int, overrides: dict[str, Any], environment: str) -> CopyJob:
        """Stage the copy (its name held from now on) and build it in the background."""
        source = self.host.instance(source_id)
        if environment == "copy" and source.parent_id is not None:
            raise AikoreError(
                "satellite_has_no_environment",
                f"environment: {source.name} is a satellite and has no environment of its own; copy it "
                "with environment 'fresh' (the copy is another satellite of the same parent)",
                409, field="environment",
            )
        fields = {k: getattr(source, k) for k in CREATE_FIELDS if k not in _NOT_COPIED}
        fields.update(overrides)
        if source.parent_id is not None:
            fields["parent_id"] = source.parent_id
        staging = await self.host.stage(fields["name"], fields.get("public_port"),
                                        self.host.workspace.script_path(source.name))
        job = CopyJob(next(self._ids), source.id, source.name, fields["name"], environment, started_at=time.time())
        self._set(job)
        self.host.spawn(self._run(job, source, fields, staging))
        return job

    def cancel(self, job_id: int) -> CopyJob:
        """Stop a copy at its next file; its staging folder is removed, no instance appears."""
        job = self.job(job_id)
        if job.state != "copying":
            raise AikoreError("copy_finished", f"copy {job_id} to {job.name!r} already ended ({job.state})", 409)
        self._cancelled.add(job_id)
        tree = self._trees.get(job_id)
        if tree is not None:
            tree.cancelled.set()
        return job

    def cancel_all(self) -> None:
        for job in self.jobs():
            if job.state == "copying":
                self.cancel(job.id)

    async def _run(self, job: CopyJob, source: Instance, fields: dict[str, Any], staging: Path) -> None:
        try:
            if job.environment == "copy":
                await self._copy_environment(job, source, staging)
            else:
                _keep_settings_files(self.host.workspace.path(source.name) / CONF_DIR, staging / CONF_DIR)
            if job.id in self._cancelled:
                raise Cancelled
            instance = await self.host.add_staged(fields, staging)
        except Cancelled:
            self._end(job, staging, "cancelled", None)
        except CopyFailed as exc:
            fault = faults.from_os(exc.cause)
            self._end(job, staging, "failed", fault.message if fault is not None else f"copying {exc}")
        except AikoreError as exc:
            self._end(job, staging, "failed", exc.message)
        except BaseException as exc:
            self._end(job, staging, "failed", f"copy failed: {exc!r}")
            raise
        else:
            self._set(dataclasses.replace(self._jobs[job.id], state="done", instance_id=instance.id,
                                          finished_at=time.time()))
        finally:
            self.host.release(job.name)
            self._trees.pop(job.id, None)
            self._cancelled.discard(job.id)

    async def _copy_environment(self, job: CopyJob, source: Instance, staging: Path) -> None:
        loop = asyncio.get_running_loop()
        last = 0.0

        def on_progress(progress: Progress) -> None:
            # Called in the copying thread: hand the figures to the loop, a few times a second.
            nonlocal last
            now = time.monotonic()
            if now - last >= _PROGRESS_EVERY or progress.files_done == progress.files_total:
                last = now
                loop.call_soon_threadsafe(self._progress, job.id, progress)

        source_conf = self.host.workspace.path(source.name) / CONF_DIR
        tree = TreeCopy(source_conf, staging / CONF_DIR, on_progress)
        self._trees[job.id] = tree
        if job.id in self._cancelled:
            raise Cancelled
        # prepare() made an empty config/; copytree makes it again with the source's mode.
        (staging / CONF_DIR).rmdir()
        copying = asyncio.ensure_future(asyncio.to_thread(tree.run))
        try:
            await asyncio.shield(copying)
        except asyncio.CancelledError:
            # The thread cannot be interrupted: it stops at its next file, and only then may the
            # staging folder be removed.
            tree.cancelled.set()
            with contextlib.suppress(BaseException):
                await copying
            raise
        await asyncio.to_thread(relocate, staging / CONF_DIR, source_conf,
                                self.host.workspace.path(job.name) / CONF_DIR)

    def _progress(self, job_id: int, progress: Progress) -> None:
        job = self._jobs.get(job_id)
        if job is not None and job.state == "copying":
            self._set(dataclasses.replace(job, progress=progress))

    def _end(self, job: CopyJob, staging: Path, state: str, error: str | None) -> None:
        self.host.workspace.discard(staging)
        self._set(dataclasses.replace(self._jobs[job.id], state=state, error=error, finished_at=time.time()))

    def _set(self, job: CopyJob) -> None:
        self._jobs[job.id] = job
        finished = [j.id for j in self._jobs.values() if j.state != "copying"]
        for old in finished[:-_KEPT]:
            del self._jobs[old]
        self.host.events.publish(CopyChanged(job))


def _keep_settings_files(source_conf: Path, target_conf: Path) -> None:
    for name in FRESH_KEEPS:
        with contextlib.suppress(FileNotFoundError):
            shutil.copy2(source_conf / name, target_conf / name)
