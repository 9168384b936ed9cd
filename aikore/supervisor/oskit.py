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
    """A process ended; ``code`` is None when it was not our child and left no status."""

    code: int | None


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


class OsKit(Protocol):
    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...

    def spawn(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], output: Path) -> Handle: ...

    def adopt(self, pid: int, create_time: float) -> Handle | None: ...

    async def terminate(self, handle: Handle | None, marker: str, grace: float) -> None: ...

    async def leftovers(self, marker: str) -> int: ...

    async def probe(self, port: int, path: str) -> bool: ...

    async def close(self) -> None: ...


class RealOsKit:
    """The real thing: subprocess, signals, psutil and aiohttp."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

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

    async def terminate(self, handle: Handle | None, marker: str, grace: float) -> None:
        """SIGTERM the group and every member found, wait ``grace``, SIGKILL what is left.

        Members are the root's process tree (snapshot before signalling, since children of a
        dying parent are re-parented out of it) plus every process carrying ``marker``.
        """
        members = await asyncio.to_thread(_members, handle, marker)
        self._signal(handle, members, signal.SIGTERM)
        if await self._wait_gone(handle, members, grace):
            members = await asyncio.to_thread(_members, handle, marker)
            if not members and (handle is None or handle.poll() is not None):
                return
        members = members + await asyncio.to_thread(_members, handle, marker)
        self._signal(handle, members, signal.SIGKILL)
        if not await self._wait_gone(handle, members, _KILL_WAIT):
            log.error("processes of launch %s survived SIGKILL: %s", marker, [p.pid for p in members])

    async def leftovers(self, marker: str) -> int:
        """How many processes of a launch still exist (0 once a stop or cleanup finished)."""
        return len(await asyncio.to_thread(_members, None, marker))

    async def probe(self, port: int, path: str) -> bool:
        """Whether ``http://127.0.0.1:port/path`` answers with any status below 500."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=_PROBE_TIMEOUT))
        try:
            async with self._session.get(f"http://127.0.0.1:{port}{path}", allow_redirects=False) as resp:
                return resp.status < 500
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
            return False

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _signal(self, handle: Handle | None, members: Iterable[psutil.Process], sig: int) -> None:
        members = list(members)
        if handle is not None and _group_is_ours(handle, members):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(handle.pid, sig)
        for proc in members:
            # psutil checks the create time first: a pid reused meanwhile is never signalled.
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                proc.send_signal(sig)

    async def _wait_gone(self, handle: Handle | None, members: Sequence[psutil.Process], within: float) -> bool:
        deadline = time.monotonic() + within
        while True:
            root_gone = handle is None or handle.poll() is not None
            if root_gone and not any(_is_alive(p) for p in members):
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


def _members(handle: Handle | None, marker: str) -> list[psutil.Process]:
    """The root's live tree plus every process whose environment carries the launch marker."""
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
    for proc in psutil.process_iter():
        if proc.pid in found or proc.pid == me:
            continue
        try:
            if proc.environ().get(MARKER) == marker:
                found[proc.pid] = proc
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
    return [p for p in found.values() if _is_alive(p)]
