"""The one seam for OS effects: spawn, adopt, terminate a process tree, probe HTTP, and the clock.

Everything the state machine (``aikore.supervisor.process``) does to the outside world goes through an
``OsKit``, so its transitions can be tested with a stand-in and no children, while a thin layer of
end-to-end tests drives this real implementation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiohttp
import psutil

from aikore.supervisor import cgroups

log = logging.getLogger(__name__)

# Every process of one launch carries this variable (environments are inherited), which finds
# even daemons that called setsid or double-forked out of the tree and the process group.
MARKER = "AIKORE_LAUNCH_ID"
# psutil derives create times from boot time and clock ticks; the same process always gives the
# same value, a different process with the same pid differs by at least one tick (10 ms).
_CREATE_TIME_TOLERANCE = 0.005
_PROBE_TIMEOUT = 2.0
_KILL_WAIT = 5.0


@dataclass(frozen=True)
class Exit:
    """A process ended; ``code`` is None when it was not our child and left no status.

    A launcher that knows more says it: ``reason`` (a Slurm job's end state) and ``stopped`` (ended
    by a decision such as a cancel or a preemption, not by a failure of the app).
    """

    code: int | None
    reason: str | None = None
    stopped: bool = False


class Handle(Protocol):
    """A running process group root: our own child, or one adopted after an AiKore restart."""

    pid: int
    create_time: float

    def poll(self) -> Exit | None: ...


class ChildHandle:
    """A process this AiKore spawned: exit status known exactly, the zombie reaped by ``poll``."""

    def __init__(self, popen: subprocess.Popen[bytes], create_time: float) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.create_time = create_time

    def poll(self) -> Exit | None:
        code = self.popen.poll()
        return None if code is None else Exit(128 - code if code < 0 else code)


class AdoptedHandle:
    """A process started by an earlier AiKore; its parent is now init, so it is polled via psutil."""

    def __init__(self, proc: psutil.Process) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.create_time = proc.create_time()

    def poll(self) -> Exit | None:
        return None if _is_alive(self.proc) else Exit(None)


@dataclass(frozen=True)
class Owner:
    """What a launch's processes are: the root's tree, the marker's carriers, the cgroup's members."""

    handle: Handle | None
    marker: str
    cgroup: str | None = None


class OsKit(Protocol):
    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...

    def make_cgroup(self, launch_id: str) -> str | None: ...

    def remove_cgroup(self, cgroup: str | None) -> None: ...

    def tidy_cgroups(self, keep: set[str]) -> None: ...

    def spawn(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], output: Path) -> Handle: ...

    def adopt(self, pid: int, create_time: float) -> Handle | None: ...

    async def terminate(self, handle: Handle | None, marker: str, grace: float, cgroup: str | None = None) -> None: ...

    async def leftovers(self, marker: str, cgroup: str | None = None) -> int: ...

    async def probe(self, port: int, path: str, owners: Sequence[Owner] = ()) -> bool: ...

    async def close(self) -> None: ...


class HealthGets:
    """GETs of apps' health paths on one kept client session: ready is any answer below 500."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def answers(self, url: str) -> bool:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=_PROBE_TIMEOUT))
        try:
            async with self._session.get(url, allow_redirects=False) as resp:
                return resp.status < 500
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
            return False

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class RealOsKit:
    """The real thing: subprocess, signals, cgroups, psutil and aiohttp."""

    def __init__(self) -> None:
        self._health = HealthGets()
        self._cgroups: cgroups.Cgroups | None = None
        self._impostors: set[tuple[int, str]] = set()

    @property
    def cgroups(self) -> cgroups.Cgroups:
        """Launch cgroups, found on first use (a probe of the OS, not done at construction)."""
        if self._cgroups is None:
            self._cgroups = cgroups.Cgroups(cgroups.detect_base())
        return self._cgroups

    def make_cgroup(self, launch_id: str) -> str | None:
        return self.cgroups.create(launch_id)

    def remove_cgroup(self, cgroup: str | None) -> None:
        """Remove a launch's cgroup once it is empty (a launch that ended on its own)."""
        cgroups.remove(cgroup)

    def tidy_cgroups(self, keep: set[str]) -> None:
        """Remove empty launch cgroups a crashed AiKore left behind, except those in ``keep``."""
        self.cgroups.prune(keep)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def spawn(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], output: Path) -> Handle:
        """Start ``argv`` as the leader of a new session and process group, detached from AiKore.

        No pipe to AiKore: stdin is /dev/null and stdout/stderr go to ``output`` (the command is
        the logwriter, which gives the instance its own pipe), so AiKore may die without taking
        the instance along. ``close_fds`` keeps AiKore's listening sockets out of the instance.
        """
        output.parent.mkdir(parents=True, exist_ok=True)
        with output.open("ab") as out:
            popen = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
                close_fds=True,
            )
        try:
            create_time = psutil.Process(popen.pid).create_time()
        except psutil.NoSuchProcess:
            create_time = 0.0  # already gone and reaped? poll() reports the exit right away
        return ChildHandle(popen, create_time)

    def adopt(self, pid: int, create_time: float) -> Handle | None:
        """The live process ``pid`` if it is the one started at ``create_time`` (not a reused pid)."""
        try:
            proc = psutil.Process(pid)
            if abs(proc.create_time() - create_time) > _CREATE_TIME_TOLERANCE or not _is_alive(proc):
                return None
            return AdoptedHandle(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
            return None

    async def terminate(self, handle: Handle | None, marker: str, grace: float, cgroup: str | None = None) -> None:
        """SIGTERM the group and every member found, wait ``grace``, SIGKILL what is left.

        Members are the root's process tree (snapshot before signalling, since children of a
        dying parent are re-parented out of it), every process carrying ``marker`` and every
        process in the launch's cgroup (which nothing escapes); the cgroup is removed at the end.
        """
        try:
            await self._terminate(handle, marker, grace, cgroup)
        finally:
            cgroups.remove(cgroup)

    async def _terminate(self, handle: Handle | None, marker: str, grace: float, cgroup: str | None) -> None:
        members = await asyncio.to_thread(_members, handle, marker, cgroup)
        self._signal(handle, members, signal.SIGTERM)
        if await self._wait_gone(handle, members, grace, cgroup):
            members = await asyncio.to_thread(_members, handle, marker, cgroup)
            if not members and (handle is None or handle.poll() is not None):
                return
        members = members + await asyncio.to_thread(_members, handle, marker, cgroup)
        cgroups.kill(cgroup)
        self._signal(handle, members, signal.SIGKILL)
        if not await self._wait_gone(handle, members, _KILL_WAIT, cgroup):
            log.error("processes of launch %s survived SIGKILL: %s", marker, [p.pid for p in members])

    async def leftovers(self, marker: str, cgroup: str | None = None) -> int:
        """How many processes of a launch still exist (0 once a stop or cleanup finished)."""
        return len(await asyncio.to_thread(_members, None, marker, cgroup))

    async def probe(self, port: int, path: str, owners: Sequence[Owner] = ()) -> bool:
        """Whether ``http://127.0.0.1:port/path`` answers below 500 - from ``owners``' processes.

        With ``owners``, the socket listening on ``port`` must belong to a process of one of those
        launches: when another program took the port first, its answers are not the instance's.
        """
        if owners:
            ours = await asyncio.to_thread(_listener_is_ours, port, owners)
            if ours is False and (port, owners[0].marker) not in self._impostors:
                self._impostors.add((port, owners[0].marker))
                log.warning("port %s: another program listens there, not launch %s; not ready", port, owners[0].marker)
            if not ours:
                return False
        return await self._health.answers(f"http://127.0.0.1:{port}{path}")

    async def close(self) -> None:
        await self._health.close()

    def _signal(self, handle: Handle | None, members: Iterable[psutil.Process], sig: int) -> None:
        members = list(members)
        if handle is not None and _group_is_ours(handle, members):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(handle.pid, sig)
        for proc in members:
            # psutil checks the create time first: a pid reused meanwhile is never signalled.
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                proc.send_signal(sig)

    async def _wait_gone(
        self, handle: Handle | None, members: Sequence[psutil.Process], within: float, cgroup: str | None = None
    ) -> bool:
        deadline = time.monotonic() + within
        while True:
            root_gone = handle is None or handle.poll() is not None
            if root_gone and not any(_is_alive(p) for p in members) and not cgroups.populated(cgroup):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)


def _is_alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _group_is_ours(handle: Handle, members: Sequence[psutil.Process]) -> bool:
    # killpg(pid) is safe while the root lives (checked via create time) or while a known member
    # still belongs to that group: the kernel never reuses an id that is still a group id.
    if handle.poll() is None:
        return True
    for proc in members:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if _is_alive(proc) and os.getpgid(proc.pid) == handle.pid:
                return True
    return False


def _tree(handle: Handle | None, cgroup: str | None = None) -> dict[int, psutil.Process]:
    """The root's live tree and the cgroup's members."""
    found: dict[int, psutil.Process] = {}
    if handle is not None and handle.poll() is None:
        try:
            root = psutil.Process(handle.pid)
            if abs(root.create_time() - handle.create_time) <= _CREATE_TIME_TOLERANCE:
                found[root.pid] = root
                for child in root.children(recursive=True):
                    found[child.pid] = child
        except psutil.NoSuchProcess:
            pass
    me = os.getpid()
    for pid in cgroups.members(cgroup):
        if pid not in found and pid != me:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                found[pid] = psutil.Process(pid)
    return found


def _members(handle: Handle | None, marker: str, cgroup: str | None = None) -> list[psutil.Process]:
    """The root's live tree, the cgroup's members and every process whose environment carries the marker."""
    found = _tree(handle, cgroup)
    me = os.getpid()
    for proc in psutil.process_iter():
        if proc.pid in found or proc.pid == me:
            continue
        try:
            if proc.environ().get(MARKER) == marker:
                found[proc.pid] = proc
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
    return [p for p in found.values() if _is_alive(p)]


def _listening_inodes(port: int) -> set[int] | None:
    """Socket inodes listening on TCP ``port`` in this network namespace (None: /proc cannot tell)."""
    inodes: set[int] = set()
    readable = False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for line in lines:
            fields = line.split()
            # local_address is HEXIP:HEXPORT; state 0A is LISTEN.
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(int(fields[9]))
    return inodes if readable else None


def _holds_socket(pids: Iterable[int], inodes: set[int]) -> bool:
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                    return True
    return False


def _listener_is_ours(port: int, owners: Sequence[Owner]) -> bool | None:
    """Whether a process of one of the launches holds the socket listening on ``port`` (None: nothing listens)."""
    inodes = _listening_inodes(port)
    if inodes is None:
        return True  # no /proc/net here: the answer is taken on trust, as before
    if not inodes:
        return None
    if any(_holds_socket(_tree(owner.handle, owner.cgroup), inodes) for owner in owners):
        return True
    # A server that daemonised out of the tree (no cgroup to hold it) still carries the marker.
    return any(_holds_socket((p.pid for p in _members(None, owner.marker)), inodes) for owner in owners)
