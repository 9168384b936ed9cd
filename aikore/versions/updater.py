"""App updates and rollbacks of instances, and what version each one runs.

An update snapshots the instance (app commit, pin, exact package set), moves the script's pin to
the new release and starts the instance again: the blueprint's own start fetches the new ref and
installs its requirements, the same code as a first install. A rollback stops the instance, checks
the snapshot's commit out, syncs the environment to the frozen package set, puts the pin back and
starts it. A failed update keeps its snapshot, so the rollback is always there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aikore.config import Settings
from aikore.errors import AikoreError, not_found
from aikore.store import faults
from aikore.store.instance import Instance
from aikore.store.workspace import Workspace
from aikore.supervisor.process import instance_env
from aikore.supervisor.states import STARTING, STOPPING
from aikore.supervisor.supervisor import Supervisor
from aikore.versions import checkout, environment
from aikore.versions.checkout import REF_PATTERN, Checkout, Pin, pin_of, with_pin
from aikore.versions.commands import CommandTimeout
from aikore.versions.releases import ReleaseCheck, Releases, is_newer
from aikore.versions.snapshots import Snapshot, Snapshots, new_id

T = TypeVar("T")


@dataclass(frozen=True)
class Operation:
    kind: str  # "update" | "rollback"
    target: str
    since: float


@dataclass(frozen=True)
class VersionInfo:
    instance: Instance
    pin: Pin | None
    app: Checkout | None
    app_path: str | None
    releases: ReleaseCheck | None
    update_available: bool | None
    operation: Operation | None
    snapshots: list[Snapshot]
    keep: int
    # The instance whose folder holds the app: itself, or a satellite's parent.
    installed_in: Instance


class Updater:
    def __init__(self, settings: Settings, supervisor: Supervisor, workspace: Workspace) -> None:
        self.settings = settings
        self.supervisor = supervisor
        self.workspace = workspace
        self.releases = Releases()
        self._operations: dict[int, Operation] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        # A dashboard asks for every instance's version at once; a few at a time keeps git's
        # processes from crowding out the instances on a small machine.
        self._reading = asyncio.Semaphore(4)

    async def close(self) -> None:
        """Cancel what runs (its git or uv is killed); the instance keeps its snapshots."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.releases.close()

    # -- reading ----------------------------------------------------------------------------

    async def info(self, instance_id: int, refresh: bool = False) -> VersionInfo:
        """What the instance's app runs; a satellite runs its parent's app, so it shows the parent's."""
        instance = self.supervisor.instance(instance_id)
        owner = self.supervisor.parent_of(instance) or instance
        folder = self.workspace.path(owner.name)
        env = self._env(owner)
        pin = self._pin(owner.id)
        # Only the local reading waits its turn; a slow remote holds up no other instance's row.
        async with self._reading:
            app = await self._app(folder, pin, env)
        url = (app.remote if app else None) or (pin.url if pin else None)
        releases = await self.releases.check(url, env, refresh) if url else None
        current = (app.tag if app else None) or (pin.value if pin else None)
        available = is_newer(releases.latest, current) if releases and releases.known else None
        return VersionInfo(
            instance, pin, app, str(app.path.relative_to(folder)) if app else None, releases, available,
            self._operations.get(owner.id), await asyncio.to_thread(Snapshots(folder).list),
            self.settings.keep_snapshots, owner,
        )

    # -- update -----------------------------------------------------------------------------

    async def update(self, instance_id: int, ref: str | None) -> tuple[Instance, Snapshot, str]:
        """Snapshot, move the pin to ``ref`` (default: the newest release) and start again."""
        if ref is not None and not REF_PATTERN.fullmatch(ref):
            raise AikoreError("invalid_field", f"ref: {ref!r} is not a tag name", 422, field="ref")
        self.supervisor.refuse_reinstall(instance_id, "updating")
        self._begin(instance_id, "update", ref or "latest")
        return await self._to_the_end(instance_id, self._update(instance_id, ref))

    async def _update(self, instance_id: int, ref: str | None) -> tuple[Instance, Snapshot, str]:
        instance = self.supervisor.instance(instance_id)
        folder, env = self.workspace.path(instance.name), self._env(instance)
        pin = self._pin(instance_id)
        if pin is None:
            raise AikoreError("no_pinned_ref", "launch.sh pins no app ref (no aik_git_checkout URL DIR \"$REF\" "
                              "with REF=${REF:-tag}): nothing to update", 422)
        app = await self._require_app(folder, pin, env)
        target = await self._target(app, pin, ref, env)
        if target == pin.value and app.checked_out_ref == target:
            raise AikoreError("up_to_date", f"{instance.name} is already at {target}", 409, field="ref")
        self._operations[instance_id] = Operation("update", target, time.time())
        await self._refuse_local_changes(app, env)
        snapshot = await self._snapshot(folder, app, pin, f"before update to {target}", env)

        async def move_pin(current: Instance) -> None:
            script = self.workspace.read_script(current.name)
            now_pin = pin_of(script)
            if now_pin is None:
                raise AikoreError("no_pinned_ref", "launch.sh no longer pins the app's ref", 409)
            self.supervisor.write_script(instance_id, with_pin(script, now_pin, target))

        started = await self.supervisor.while_stopped(
            instance_id, move_pin, note=f"updating to {target}", reason=f"updating to {target}"
        )
        return started, snapshot, target

    async def _target(self, app: Checkout, pin: Pin, ref: str | None, env: dict[str, str]) -> str:
        url = app.remote or pin.url
        check = await self.releases.check(url, env, refresh=True) if url else None
        if ref is None:
            if check is None or not check.known:
                reason = check.error if check else "the app's clone has no remote"
                raise AikoreError("latest_unknown", f"cannot tell the newest release ({reason}); name a ref", 409)
            if check.latest is None:
                raise AikoreError("no_release", f"{url} has no release tags; name a ref", 409)
            return check.latest
        if check is not None and check.known and ref not in check.tags:
            raise AikoreError("unknown_ref", f"ref: {url} has no tag {ref!r}", 422, field="ref")
        return ref

    # -- rollback ---------------------------------------------------------------------------

    async def rollback(self, instance_id: int, snapshot_id: str | None) -> tuple[Instance, Snapshot]:
        """Put the snapshot's commit, packages and pin back (default: the newest) and start again."""
        self.supervisor.refuse_reinstall(instance_id, "rolling back")
        self._begin(instance_id, "rollback", snapshot_id or "last snapshot")
        return await self._to_the_end(instance_id, self._rollback(instance_id, snapshot_id))

    async def _rollback(self, instance_id: int, snapshot_id: str | None) -> tuple[Instance, Snapshot]:
        instance = self.supervisor.instance(instance_id)
        folder, env = self.workspace.path(instance.name), self._env(instance)
        store = Snapshots(folder)
        if snapshot_id is None:
            found = await asyncio.to_thread(store.list)
            if not found:
                raise AikoreError("no_snapshot", f"{instance.name} has no snapshot to roll back to", 409)
            snapshot = found[0]
        else:
            chosen = await asyncio.to_thread(store.get, snapshot_id)
            if chosen is None:
                raise not_found("snapshot", snapshot_id)
            snapshot = chosen
        label = snapshot.tag or snapshot.pinned
        self._operations[instance_id] = Operation("rollback", label, time.time())
        app_dir = folder / snapshot.app_path
        if not (app_dir / ".git").exists():
            raise AikoreError("no_app_checkout", f"{snapshot.app_path} is no longer a git checkout", 409)
        app = await checkout.describe(app_dir, env)
        if app is not None:
            await self._refuse_local_changes(app, env)

        async def put_back(current: Instance) -> None:
            here = self.workspace.path(current.name)
            try:
                await self._put_back(here, Snapshots(here), snapshot, env)
            except (RuntimeError, CommandTimeout, OSError) as exc:
                raise AikoreError(
                    "rollback_failed",
                    f"rollback of {current.name} to {label} failed: {exc}. It is stopped and the snapshot is "
                    "kept: fix the cause and roll back again",
                    500,
                ) from exc
            script = self.workspace.read_script(current.name)
            now_pin = pin_of(script)
            if now_pin is not None and now_pin.variable == snapshot.variable:
                self.supervisor.write_script(instance_id, with_pin(script, now_pin, snapshot.pinned))

        started = await self.supervisor.while_stopped(
            instance_id, put_back, note=f"rolled back to {label}", reason=f"rolling back to {label}"
        )
        return started, snapshot

    async def _put_back(self, folder: Path, store: Snapshots, snapshot: Snapshot, env: dict[str, str]) -> None:
        await checkout.restore(folder / snapshot.app_path, snapshot.commit, snapshot.checked_out_ref, env)
        packages = store.packages(snapshot)
        if snapshot.env_path is None or not packages.exists():
            return
        env_dir = folder / snapshot.env_path
        if not (env_dir / "bin" / "python").exists():
            raise RuntimeError(f"{snapshot.env_path} is no longer a Python environment (rebuilt meanwhile?)")
        await environment.sync(env_dir, packages, env)
        environment.restore_records(env_dir, snapshot.installed)

    # -- helpers ----------------------------------------------------------------------------

    def _begin(self, instance_id: int, kind: str, target: str) -> None:
        """One update or rollback per instance at a time, and none while it starts or stops."""
        status = self.supervisor.instance(instance_id).status
        if instance_id in self._operations:
            running = self._operations[instance_id]
            raise AikoreError("operation_running", f"a {running.kind} to {running.target} is under way", 409)
        if status in (STARTING, STOPPING) or self.supervisor.get(instance_id).ops.locked():
            raise AikoreError("instance_busy", f"the instance is {status}; wait until it is running or stopped", 409)
        self._operations[instance_id] = Operation(kind, target, time.time())

    async def _to_the_end(self, instance_id: int, coro: Coroutine[Any, Any, T]) -> T:
        """Run on even if the client goes away (an update stopped halfway helps nobody); the
        operation's mark goes when the work ends, not when its caller does."""

        async def marked() -> T:
            try:
                return await coro
            finally:
                self._operations.pop(instance_id, None)

        task = asyncio.ensure_future(marked())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(task)

    def _env(self, instance: Instance) -> dict[str, str]:
        # What the blueprint itself runs git and uv with (its UV_*, GIT_CONFIG_GLOBAL, PATH).
        return instance_env(self.settings, instance, self.workspace.path(instance.name), 0, False)

    def _pin(self, instance_id: int) -> Pin | None:
        try:
            return pin_of(self.supervisor.read_script(instance_id))
        except AikoreError:
            return None

    async def _app(self, folder: Path, pin: Pin | None, env: dict[str, str]) -> Checkout | None:
        clones = await asyncio.to_thread(checkout.find_checkouts, folder)
        remotes = {path: await checkout.remote_of(path, env) for path in clones} if pin and pin.url else {}
        chosen = checkout.choose_app(clones, remotes, pin)
        return await checkout.describe(chosen, env) if chosen else None

    async def _require_app(self, folder: Path, pin: Pin, env: dict[str, str]) -> Checkout:
        app = await self._app(folder, pin, env)
        if app is None:
            raise AikoreError("no_app_checkout", "the instance has no git checkout of its app yet: start it once "
                              "so its blueprint clones it", 409)
        return app

    async def _refuse_local_changes(self, app: Checkout, env: dict[str, str]) -> None:
        changed = await checkout.local_changes(app.path, env)
        if changed:
            raise AikoreError("local_changes", f"{app.path.name} has local changes ({', '.join(changed[:5])}); "
                              f"commit or stash them (git -C '{app.path}' stash) first", 409)

    async def _snapshot(self, folder: Path, app: Checkout, pin: Pin, reason: str, env: dict[str, str]) -> Snapshot:
        env_dir = await asyncio.to_thread(environment.find_env, folder)
        try:
            packages = await environment.freeze(env_dir, env) if env_dir else None
        except (RuntimeError, CommandTimeout) as exc:
            raise AikoreError("snapshot_failed", f"no snapshot, so no update: {exc}", 500) from exc
        now = time.time()
        snapshot = Snapshot(
            id=new_id(now), created_at=now, reason=reason, app_path=str(app.path.relative_to(folder)),
            commit=app.commit, tag=app.tag, checked_out_ref=app.checked_out_ref, variable=pin.variable,
            pinned=pin.value, env_path=str(env_dir.relative_to(folder)) if env_dir else None,
            package_count=_count(packages), installed=environment.installed_records(env_dir) if env_dir else {},
        )
        try:
            await asyncio.to_thread(Snapshots(folder).save, snapshot, packages, self.settings.keep_snapshots)
        except OSError as exc:
            raise (faults.from_os(exc) or exc) from exc
        return snapshot


def _count(packages: str | None) -> int | None:
    if packages is None:
        return None
    return sum(1 for line in packages.splitlines() if line.strip() and not line.lstrip().startswith("#"))

