"""The state machine without children: a stand-in OsKit drives spawn, exit, readiness, adoption and time."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

import pytest

from aikore.config import Settings
from aikore.events import EventBus
from aikore.store.db import Store
from aikore.store.instance import Instance
from aikore.store.workspace import Workspace
from aikore.supervisor.events import InstanceChanged
from aikore.supervisor.oskit import Exit, Handle, Owner
from aikore.supervisor.states import (
    ACTIVE_STATES,
    ALL_STATES,
    ERROR,
    RUNNING,
    STARTING,
    STOPPED,
    STOPPING,
    TRANSITIONS,
    can_change,
)
from aikore.supervisor.supervisor import Backoff, Supervisor
from tests.helpers import until

_pids = itertools.count(100_000)


class FakeHandle:
    def __init__(self) -> None:
        self.pid = next(_pids)
        self.create_time = 1000.0 + self.pid
        self.exit: Exit | None = None

    def poll(self) -> Exit | None:
        return self.exit


# Loop passes that wake-ups wait for, so tasks that are ready run before virtual time moves on.
_SETTLE_PASSES = 5


class VirtualClock:
    """Time that passes only in ``sleep``: sleepers wake in order of their wake time, at once.

    A driver task jumps the clock to the earliest wake time whenever the loop has run what was
    ready, so ready timeouts, back-off delays and watch intervals take no real time yet keep
    their order. Like trio's autojump clock it does not wait for threads: while a SQLite write is
    in flight, other sleepers may wake, so virtual time can pass during it.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._driver: asyncio.Task[None] | None = None

    async def sleep(self, seconds: float) -> None:
        woken = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(seconds, 0.0), next(self._order), woken))
        if self._driver is None or self._driver.done():
            self._driver = asyncio.create_task(self._drive())
        await woken

    async def _drive(self) -> None:
        while self._sleepers:
            for _ in range(_SETTLE_PASSES):
                await asyncio.sleep(0)
            at, _, woken = heapq.heappop(self._sleepers)
            if not woken.done():  # a cancelled sleeper moves no time
                self.now = max(self.now, at)
                woken.set_result(None)


class FakeKit:
    """Processes that only exist in memory, on a virtual clock; the test says when they answer or exit."""

    def __init__(self) -> None:
        self.clock = VirtualClock()
        self.spawned: list[tuple[FakeHandle, Sequence[str], Mapping[str, str]]] = []
        self.alive: dict[tuple[int, float], FakeHandle] = {}
        self.ready = False
        # Ports that do not answer even when ``ready`` (a companion still starting).
        self.silent_ports: set[int] = set()
        self.terminated: list[int] = []

    def monotonic(self) -> float:
        return self.clock.now

    async def sleep(self, seconds: float) -> None:
        await self.clock.sleep(seconds)

    def make_cgroup(self, launch_id: str) -> str | None:
        return None

    def remove_cgroup(self, cgroup: str | None) -> None:
        return None

    def tidy_cgroups(self, keep: set[str]) -> None:
        return None

    def spawn(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], output: Path) -> Handle:
        handle = FakeHandle()
        self.spawned.append((handle, argv, env))
        self.alive[(handle.pid, handle.create_time)] = handle
        return handle

    def adopt(self, pid: int, create_time: float) -> Handle | None:
        handle = self.alive.get((pid, create_time))
        return handle if handle is not None and handle.exit is None else None

    async def terminate(self, handle: Handle | None, marker: str, grace: float, cgroup: str | None = None) -> None:
        if isinstance(handle, FakeHandle) and handle.exit is None:
            handle.exit = Exit(143)
            self.terminated.append(handle.pid)

    async def leftovers(self, marker: str, cgroup: str | None = None) -> int:
        return 0

    async def probe(self, port: int, path: str, owners: Sequence[Owner] = ()) -> bool:
        return self.ready and port not in self.silent_ports

    async def close(self) -> None:
        return None


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = Store(tmp_path / "aikore.db")
    await store.open()
    yield store
    await store.close()


def _supervisor(
    tmp_path: Path, store: Store, kit: FakeKit, published: list[Instance], ready_timeout: float = 0.5
) -> Supervisor:
    settings = Settings(
        data_dir=tmp_path, auth="none", public_ports=range(0), stop_timeout=1.0, ready_timeout=ready_timeout
    )
    bus = EventBus()
    # The instances in each InstanceChanged event, in order (the state machine's publications).
    bus.listen(lambda event: published.append(event.instance) if isinstance(event, InstanceChanged) else None)
    return Supervisor(settings, store, Workspace(tmp_path / "instances", tmp_path / "trash"), bus, kit)


def test_every_transition_is_between_known_states_and_error_is_only_entered_without_processes() -> None:
    assert all(a in ALL_STATES and b in ALL_STATES for a, b in TRANSITIONS)
    assert not can_change(RUNNING, STARTING) and not can_change(STOPPED, RUNNING)
    assert not can_change(STOPPED, STOPPING) and not can_change(ERROR, RUNNING)
    # Every way into ERROR or STOPPED comes from a state where AiKore itself ended the processes.
    assert {a for a, b in TRANSITIONS if b == STOPPED} <= {STOPPING}


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = Backoff(base=1.0, factor=2.0, max_delay=5.0)
    assert [backoff.delay(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


async def test_transition_stopped_to_starting_to_running_only_when_probe_answers(tmp_path: Path, store: Store) -> None:
    kit, published = FakeKit(), []
    sup = _supervisor(tmp_path, store, kit, published, ready_timeout=30.0)
    inst = await store.insert_instance(name="a", blueprint="demo")
    await sup.startup()
    published.clear()  # startup announces every instance once; what follows is the start
    await sup.start(inst.id)
    assert [i.status for i in published] == [STARTING]
    await kit.sleep(2.0)
    assert [i.status for i in published] == [STARTING], "running must wait for the health probe"
    kit.ready = True
    await until(lambda: published[-1].status == RUNNING, what="running")
    _, argv, env = kit.spawned[0]
    assert argv[-2:] == ["bash", str(tmp_path / "instances" / "a" / "launch.sh")]
    assert env["WEBUI_PORT"] == str(published[-1].port) and env["AIKORE_REBUILD_ENV"] == "0"
    await sup.shutdown()
    assert published[-1].status == STOPPED and kit.terminated


async def test_transition_running_to_error_when_the_process_exits(tmp_path: Path, store: Store) -> None:
    kit, published = FakeKit(), []
    kit.ready = True
    sup = _supervisor(tmp_path, store, kit, published)
    inst = await store.insert_instance(name="a", blueprint="demo")
    await sup.startup()
    published.clear()  # startup announces every instance once; what follows is the start
    await sup.start(inst.id)
    await until(lambda: published[-1].status == RUNNING, what="running")
    kit.spawned[0][0].exit = Exit(2)
    await until(lambda: published[-1].status == ERROR, what="error")
    assert published[-1].exit_code == 2 and published[-1].pid is None and published[-1].port is None
    assert sup.instance_pids() == {}


async def test_transition_starting_to_stopping_to_error_when_never_ready(tmp_path: Path, store: Store) -> None:
    kit, published = FakeKit(), []
    sup = _supervisor(tmp_path, store, kit, published)
    inst = await store.insert_instance(name="a", blueprint="demo")
    await sup.startup()
    published.clear()  # startup announces every instance once; what follows is the start
    await sup.start(inst.id)
    await until(lambda: published[-1].status == ERROR, what="error")
    assert [i.status for i in published] == [STARTING, STOPPING, ERROR]
    assert "not ready" in (published[-1].status_message or "")
    assert kit.terminated == [kit.spawned[0][0].pid]


async def test_active_instance_is_adopted_when_pid_and_create_time_match(tmp_path: Path, store: Store) -> None:
    kit, published = FakeKit(), []
    alive = FakeHandle()
    kit.alive[(alive.pid, alive.create_time)] = alive
    inst = await store.insert_instance(
        name="a", blueprint="demo", status=RUNNING, pid=alive.pid, pid_create_time=alive.create_time, port=20001
    )
    gone = await store.insert_instance(
        name="b", blueprint="demo", status=RUNNING, pid=alive.pid, pid_create_time=alive.create_time + 1, port=20002
    )
    sup = _supervisor(tmp_path, store, kit, published)
    await sup.startup()
    assert sup.instance_pids() == {inst.id: (alive.pid,)}
    assert (await store.get_instance(inst.id)).status == RUNNING  # type: ignore[union-attr]
    assert (await store.get_instance(gone.id)).status == ERROR  # type: ignore[union-attr]
    assert sup.ports.reserved() == {20001: "a"}
    assert alive.exit is None, "the process with the reused pid is left alone"
    assert {i.status for i in published if i.id == inst.id} == {RUNNING}
    assert all(s in ACTIVE_STATES or s == ERROR for s in (i.status for i in published))


async def test_companion_starts_with_the_instance_and_its_death_fails_the_instance(
    tmp_path: Path, store: Store
) -> None:
    from aikore.supervisor.process import CompanionSpec

    kit, published = FakeKit(), []
    kit.ready = True
    sup = _supervisor(tmp_path, store, kit, published, ready_timeout=30.0)
    sup.add_companion(lambda inst, env: CompanionSpec("desktop", ["xvfb-run", env["WEBUI_PORT"]], port=30001))
    inst = await store.insert_instance(name="a", blueprint="demo")
    await sup.startup()
    published.clear()  # startup announces every instance once; what follows is the start
    await sup.start(inst.id)
    await until(lambda: published[-1].status == RUNNING, what="running")
    main, desktop = kit.spawned[0][0], kit.spawned[1][0]
    assert kit.spawned[1][1][-2:] == ["xvfb-run", str(published[-1].port)]
    records = await sup.records.load(inst.id)
    assert {r.role: r.pid for r in records.values()} == {"main": main.pid, "desktop": desktop.pid}
    desktop.exit = Exit(1)
    await until(lambda: published[-1].status == ERROR, what="error")
    assert (published[-1].status_message or "").startswith("desktop exited with code 1")
    assert main.exit is not None, "the main process goes with its companion"
    assert await sup.records.load(inst.id) == {}


async def test_adoption_fails_the_instance_when_a_companion_died_meanwhile(tmp_path: Path, store: Store) -> None:
    from aikore.supervisor.records import GroupRecord

    kit, published = FakeKit(), []
    main = FakeHandle()
    kit.alive[(main.pid, main.create_time)] = main
    inst = await store.insert_instance(
        name="a", blueprint="demo", status=RUNNING, pid=main.pid, pid_create_time=main.create_time, port=20001
    )
    sup = _supervisor(tmp_path, store, kit, published)
    await sup.records.save(GroupRecord(inst.id, "main", main.pid, main.create_time, "m1", 20001))
    await sup.records.save(GroupRecord(inst.id, "desktop", 4242, 1.0, "d1", 30001))
    await sup.startup()
    final = await store.get_instance(inst.id)
    assert final is not None and final.status == ERROR
    assert "desktop exited while AiKore was not running" in (final.status_message or "")
    assert main.exit is not None and sup.ports.reserved() == {}


async def test_on_failure_restarts_after_a_never_ready_cleanup_longer_than_the_delay(
    tmp_path: Path, store: Store
) -> None:
    class SlowStopKit(FakeKit):
        async def terminate(self, handle: Handle | None, marker: str, grace: float, cgroup: str | None = None) -> None:
            await self.sleep(0.3)  # longer than the first backoff delay below
            await super().terminate(handle, marker, grace, cgroup)

    kit, published = SlowStopKit(), []
    sup = _supervisor(tmp_path, store, kit, published, ready_timeout=0.2)
    sup.backoff = Backoff(base=0.05, max_attempts=1)
    inst = await store.insert_instance(name="a", blueprint="demo", restart_policy="on-failure")
    await sup.startup()
    published.clear()  # startup announces every instance once; what follows is the start
    await sup.start(inst.id)
    await until(lambda: len(kit.spawned) == 2, what="the restart after the first failure")
    await until(lambda: "gave up" in (published[-1].status_message or ""), what="the policy to give up")
    assert [i.status for i in published].count(STARTING) == 2


async def test_a_failing_companion_factory_is_an_error_not_a_crash(tmp_path: Path, store: Store) -> None:
    kit, published = FakeKit(), []
    sup = _supervisor(tmp_path, store, kit, published)
    stopped: list[Instance] = []
    sup.on_stop.append(stopped.append)

    def broken(inst: Instance, env: Mapping[str, str]) -> None:
        raise RuntimeError("no Xvfb here")

    sup.add_companion(broken)
    inst = await store.insert_instance(name="a", blueprint="demo")
    await sup.startup()
    published.clear()  # startup announces every instance once; what follows is the start
    await sup.start(inst.id)
    assert [i.status for i in published] == [STARTING, ERROR]
    assert published[-1].status_message == "cannot start: no Xvfb here"
    assert kit.spawned == [], "companions are asked before anything runs"
    assert sup.ports.reserved() == {} and [i.id for i in stopped] == [inst.id]


async def test_a_companion_with_a_ready_path_holds_starting_until_it_answers_too(tmp_path: Path, store: Store) -> None:
    from aikore.supervisor.process import CompanionSpec

    kit, published = FakeKit(), []
    kit.ready = True
    kit.silent_ports.add(30001)
    sup = _supervisor(tmp_path, store, kit, published, ready_timeout=30.0)
    spec = CompanionSpec("desktop", ["selkies"], port=30001, ready_path="/", row_fields={"persistent_port": 30001})
    sup.add_companion(lambda inst, env: spec)
    inst = await store.insert_instance(name="a", blueprint="demo")
    await sup.startup()
    published.clear()  # startup announces every instance once; what follows is the start
    await sup.start(inst.id)
    assert published[-1].persistent_port == 30001, "the companion's row fields come with the start"
    await kit.sleep(2.0)
    assert [i.status for i in published] == [STARTING], "the app answers, the companion does not yet"
    kit.silent_ports.clear()
    await until(lambda: published[-1].status == RUNNING, what="running once the companion answers")
    await sup.shutdown()


class FlakyStore(Store):
    """A store whose disk can be made full: every change is refused while ``full``."""

    full = False

    async def write(self, sql: str, params=()):
        from aikore.store.faults import disk_full

        if self.full:
            raise disk_full("test: no space left")
        return await super().write(sql, params)


@pytest.fixture
async def flaky(tmp_path: Path) -> AsyncIterator[FlakyStore]:
    store = FlakyStore(tmp_path / "flaky.db")
    await store.open()
    yield store
    await store.close()


async def test_an_exit_the_database_refuses_to_record_leaves_the_state_as_stored_and_is_recorded_later(
    tmp_path: Path, flaky: FlakyStore
) -> None:
    kit, published = FakeKit(), []
    kit.ready = True
    sup = _supervisor(tmp_path, flaky, kit, published)
    inst = await flaky.insert_instance(name="a", blueprint="demo")
    await sup.startup()
    await sup.start(inst.id)
    await until(lambda: published[-1].status == RUNNING, what="running")
    flaky.full = True
    kit.spawned[0][0].exit = Exit(2)
    await kit.sleep(5.0)
    proc = sup.get(inst.id)
    # Memory never runs ahead of the database: both still say running.
    assert proc.state == RUNNING == (await flaky.get_instance(inst.id)).status  # type: ignore[union-attr]
    assert published[-1].status == RUNNING
    flaky.full = False
    await until(lambda: published[-1].status == ERROR, what="the exit, recorded once the disk has room")
    assert published[-1].exit_code == 2 and (await flaky.get_instance(inst.id)).status == ERROR  # type: ignore[union-attr]


async def test_a_stop_the_database_refuses_changes_nothing_and_the_instance_stays_watched(
    tmp_path: Path, flaky: FlakyStore
) -> None:
    from aikore.store.faults import StorageError

    kit, published = FakeKit(), []
    kit.ready = True
    sup = _supervisor(tmp_path, flaky, kit, published)
    inst = await flaky.insert_instance(name="a", blueprint="demo")
    await sup.startup()
    await sup.start(inst.id)
    await until(lambda: published[-1].status == RUNNING, what="running")
    flaky.full = True
    with pytest.raises(StorageError) as refused:
        await sup.stop(inst.id)
    assert refused.value.status == 507
    assert sup.get(inst.id).state == RUNNING and kit.terminated == []
    flaky.full = False
    kit.spawned[0][0].exit = Exit(1)
    await until(lambda: published[-1].status == ERROR, what="a later crash, still noticed")


async def test_a_start_whose_launch_cannot_be_recorded_spawns_nothing(tmp_path: Path, flaky: FlakyStore) -> None:
    from aikore.store.faults import StorageError

    kit, published = FakeKit(), []
    sup = _supervisor(tmp_path, flaky, kit, published)
    inst = await flaky.insert_instance(name="a", blueprint="demo")
    await sup.startup()
    flaky.full = True
    with pytest.raises(StorageError):
        await sup.start(inst.id)
    assert kit.spawned == [] and sup.get(inst.id).state == STOPPED and sup.ports.reserved() == {}


async def test_a_pending_on_failure_restart_is_cancelled_when_the_policy_becomes_never(
    tmp_path: Path, store: Store
) -> None:
    class GatedKit(FakeKit):
        """The restart's delay ends only when the test opens the gate (virtual time would rush past)."""

        def __init__(self) -> None:
            super().__init__()
            self.gate = asyncio.Event()

        async def sleep(self, seconds: float) -> None:
            if seconds >= 5.0:
                await self.gate.wait()
            await super().sleep(seconds)

    kit, published = GatedKit(), []
    kit.ready = True
    sup = _supervisor(tmp_path, store, kit, published)
    sup.backoff = Backoff(base=5.0)
    inst = await store.insert_instance(name="a", blueprint="demo", restart_policy="on-failure")
    await sup.startup()
    await sup.start(inst.id)
    await until(lambda: published[-1].status == RUNNING, what="running")
    kit.spawned[0][0].exit = Exit(1)
    await until(lambda: "restarting in 5 s" in (published[-1].status_message or ""), what="the restart to be due")
    await until(sup.pending.load, what="the pending restart to be kept in the database")
    await sup.update(inst.id, {"restart_policy": "never"})
    kit.gate.set()
    await kit.sleep(20.0)
    assert len(kit.spawned) == 1, "the restart the old policy scheduled must not happen"
    assert await sup.pending.load() == {}
