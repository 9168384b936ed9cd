"""One shell on a pseudo-terminal: spawned in its own session, resized, attached, ended as a whole."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import secrets
import signal
import struct
import sys
import termios
import time
from collections.abc import Callable, Mapping
from pathlib import Path

# Output kept for a reattach (the screen a kept session shows when the browser comes back).
SCROLLBACK = 256 * 1024
_READ = 64 * 1024
# How long a hung-up session has to end by itself before it is killed.
GRACE = 2.0
# Input not yet taken by the shell (a paste into a busy program); more than this is dropped.
MAX_PENDING_INPUT = 16 * 1024 * 1024
# Makes the PTY the shell's controlling terminal (so the shell is hung up when the PTY's other
# side closes, AiKore dying included), then becomes the shell. A tiny exec shim instead of
# subprocess's preexec_fn, which is unsafe in a process with threads.
_CTTY_SHIM = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execvpe(sys.argv[1], sys.argv[1:], os.environ)"
)

_BASHRC = Path(__file__).with_name("bashrc")

Listener = Callable[[bytes | None], None]


class TerminalSession:
    """A shell on a PTY; output goes to the attached listener (None = the shell ended)."""

    def __init__(self, title: str, cwd: Path, env: Mapping[str, str], keep: bool = False,
                 owner: int | None = None) -> None:
        self.id = secrets.token_hex(8)
        self.title = title
        self.cwd = cwd
        self.env = dict(env)
        self.keep = keep
        # The instance whose environment the shell has (None: AiKore's own shell).
        self.owner = owner
        self.created = time.time()
        self.pid: int | None = None
        self.exit_code: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._master = -1
        self._scrollback = bytearray()
        self._pending = bytearray()
        self._hung_up = False
        self._writer = False
        self._listener: Listener | None = None
        self._ended = asyncio.Event()

    @property
    def attached(self) -> bool:
        return self._listener is not None

    @property
    def alive(self) -> bool:
        return not self._ended.is_set()

    async def start(self, cols: int = 80, rows: int = 24) -> None:
        master, slave = os.openpty()
        try:
            _set_size(slave, cols, rows)
            env = {**self.env, "TERM": "xterm-256color", "COLORTERM": "truecolor"}
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", _CTTY_SHIM, "bash", "--rcfile", str(_BASHRC), "-i",
                stdin=slave, stdout=slave, stderr=slave, cwd=self.cwd, env=env, start_new_session=True,
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        self.pid = self._proc.pid
        self._master = master
        os.set_blocking(master, False)
        asyncio.get_running_loop().add_reader(master, self._on_output)
        asyncio.get_running_loop().create_task(self._reap())

    def attach(self, listener: Listener) -> bytes:
        """Send output to ``listener`` from now on; returns what the screen showed so far."""
        self._listener = listener
        return bytes(self._scrollback)

    def detach(self) -> None:
        self._listener = None

    def write(self, data: bytes) -> None:
        """Queue input for the shell; it is written as the PTY takes it, never blocking the loop."""
        if self._master < 0 or not data or len(self._pending) + len(data) > MAX_PENDING_INPUT:
            return
        self._pending += data
        self._flush_input()

    def _flush_input(self) -> None:
        while self._pending and self._master >= 0:
            try:
                written = os.write(self._master, self._pending)
            except BlockingIOError:
                break
            except OSError:
                self._pending.clear()
                break
            del self._pending[:written]
        # The PTY's input buffer is a few KiB: a large paste waits for the shell to read it.
        waiting = bool(self._pending) and self._master >= 0
        if waiting != self._writer:
            loop = asyncio.get_running_loop()
            if waiting:
                loop.add_writer(self._master, self._flush_input)
            else:
                loop.remove_writer(self._master)
            self._writer = waiting

    def resize(self, cols: int, rows: int) -> None:
        if self._master >= 0:
            _set_size(self._master, cols, rows)

    async def end(self, grace: float = GRACE) -> None:
        """Hang up the shell, as closing a terminal window does; it hangs up its own jobs.

        Only the shell is signalled: a process hung up twice (by us and again by the shell) dies
        inside its exit trap, and a `pyenv rehash` run by ~/.bashrc then leaves its lock behind,
        hanging every later shell. What is left of the session when the shell is gone goes in _reap.
        """
        if self.pid is None:
            return
        self._hung_up = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGHUP)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._ended.wait()), grace)
        # A shell that ignores the hangup is killed with its whole session.
        _signal_session(self.pid, signal.SIGKILL)
        await self._ended.wait()

    async def wait(self) -> int | None:
        await self._ended.wait()
        return self.exit_code

    def _on_output(self) -> None:
        try:
            data = os.read(self._master, _READ)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # EIO: every holder of the PTY's other side is gone
        if not data:
            self._close_master()
            return
        self._scrollback += data
        if len(self._scrollback) > SCROLLBACK:
            del self._scrollback[: len(self._scrollback) - SCROLLBACK]
        if self._listener is not None:
            self._listener(data)

    def _close_master(self) -> None:
        if self._master >= 0:
            loop = asyncio.get_running_loop()
            loop.remove_reader(self._master)
            if self._writer:
                loop.remove_writer(self._master)
                self._writer = False
            self._pending.clear()
            os.close(self._master)
            self._master = -1

    async def _reap(self) -> None:
        assert self._proc is not None
        self.exit_code = await self._proc.wait()
        # Nothing of the session outlives the shell: jobs it left running get a hangup (unless it
        # hung them up itself) and a moment to clean up, then whatever is left is killed.
        await _end_session(self._proc.pid, GRACE, hang_up=not self._hung_up)
        # The rest of the output (the shell's last words) is read before the end is announced.
        deadline = time.monotonic() + 1.0
        while self._master >= 0 and time.monotonic() < deadline:
            self._on_output()
            await asyncio.sleep(0.01)
        self._close_master()
        self._ended.set()
        if self._listener is not None:
            self._listener(None)


def _set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


async def _end_session(sid: int, grace: float, hang_up: bool) -> None:
    if hang_up:
        _signal_session(sid, signal.SIGHUP)
    for _ in range(int(grace / 0.05)):
        if not _session_members(sid):
            break
        await asyncio.sleep(0.05)
    _signal_session(sid, signal.SIGKILL)


def _signal_session(sid: int, signum: int) -> None:
    """Signal every process of session ``sid`` (the shell made it; its jobs have their own groups)."""
    for pid in _session_members(sid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def _session_members(sid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.getsid(int(entry)) == sid:
                    members.append(int(entry))
    return members
