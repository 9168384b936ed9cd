"""The tiny process that owns an instance's log file: ``python -m aikore.supervisor.logwriter ... -- cmd``.

Why a process of its own: an instance must outlive a ``kill -9`` of AiKore, so its output cannot
flow through AiKore; and a child writing straight to its log with O_APPEND keeps writing to the
same inode however the file is renamed, so size rotation would never take effect. This writer
starts the instance command with stdout+stderr on a pipe, copies every byte to the log, rotates
by size at line boundaries, and exits with the command's exit status. It is the root of the
instance's own session and process group, so it survives AiKore and is stopped with the instance.

It also follows the install progress a blueprint reports: a line ``::aikore-phase NAME [FRACTION]``
in the output (README, "Install progress") is kept in the log and written, as the current phase,
to a small JSON file AiKore reads (``--phase``); a file of its own, so that AiKore never parses the
log and a re-started AiKore finds the phase of an instance it adopts.

Stdlib only, and nothing from the rest of aikore: it must start fast and never depend on AiKore.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

# After the command exits, its descendants may still hold the pipe; read what they flush for this
# long, then exit so AiKore sees the exit promptly (it cleans up the leftovers).
_DRAIN_AFTER_EXIT = 0.5
_POLL = 0.1
_CHUNK = 64 * 1024
PHASE_MARKER = b"::aikore-phase"
_PHASE_LINE = re.compile(
    rb"^::aikore-phase[ \t]+([a-z][a-z0-9-]{0,39})(?:[ \t]+(0?\.[0-9]{1,6}|[01](?:\.0{1,6})?))?[ \t]*$"
)
# A marker line is short; a longer unfinished line is no marker and is not held in memory.
_PHASE_LINE_MAX = 200


def backup_path(path: Path, index: int) -> Path:
    """``instance.log`` → ``instance.log.1`` (newest backup) ... ``.N`` (oldest)."""
    return path.with_name(f"{path.name}.{index}")


class RotatingFile:
    """Append-only log file rotated by size; the current file is ``path``, older ones ``path.N``.

    A write never fails: on a full disk (or any write error) the bytes are dropped and counted,
    and the instance's output keeps flowing through the pipe. Every later write tries again (a
    refused write costs one system call); the first that lands starts with a line saying how much
    was lost.
    """

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max(1, max_bytes)
        self.backups = max(0, backups)
        self.size = 0
        self.dropped = 0
        self._fd: int | None = None
        self._error = ""
        # Whether the file ends at a line end (a dropped write may have cut a line).
        self._line_start = True
        # Bytes of the unfinished line at the end of this file (0 at a line end or in a new file).
        self._line_len = 0
        # Bytes of the current ``write`` that reached the file.
        self._landed = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._open()
        except OSError as exc:
            self._error = exc.strerror or str(exc)

    def write(self, data: bytes) -> None:
        """Append ``data``; a file ends at a line end once the next line would pass ``max_bytes``."""
        if not data:
            return
        if (self._fd is None or self.dropped) and not self._recover():
            self.dropped += len(data)
            return
        self._landed = 0
        try:
            self._write_rotating(data)
        except OSError as exc:
            # What did not land (a partial write counts what did) is dropped, not retried.
            self.dropped += len(data) - self._landed
            self._error = exc.strerror or str(exc)

    def _write_rotating(self, data: bytes) -> None:
        while self.size + len(data) > self.max_bytes:
            cut = data.rfind(b"\n", 0, max(self.max_bytes - self.size, 0)) + 1
            if cut == 0:
                end = data.find(b"\n") + 1
                if self._line_len and self._line_len + (end or len(data)) <= self.max_bytes:
                    # The rest of a line this file already holds the start of: finished here, the
                    # file going over the limit by less than a line, so that no line shorter than a
                    # file is ever split across two (apps print a line in several writes).
                    cut = end or len(data)
                elif self.size == self._line_len:
                    # One line longer than a whole file: kept in a file of its own (split only where
                    # it passes the limit).
                    cut = end or len(data)
            self._write(data[:cut])
            data = data[cut:]
            if not data and (self.size <= self.max_bytes or 0 < self._line_len <= self.max_bytes):
                return
            self.rotate()
        if data:
            self._write(data)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        start = 0
        while start < len(data):
            assert self._fd is not None
            written = os.write(self._fd, view[start:])
            end = start + written
            self._line_start = data[end - 1 : end] == b"\n" if written else self._line_start
            last = data.rfind(b"\n", start, end)
            self._line_len = end - last - 1 if last >= 0 else self._line_len + written
            start = end
            self.size += written
            self._landed += written

    def _open(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        # Private whatever the umask, an older log included: apps print tokens and keys.
        os.fchmod(self._fd, 0o600)
        self.size = os.fstat(self._fd).st_size

    def _recover(self) -> bool:
        """Try again; on success, say first (on a line of its own) what was dropped."""
        try:
            if self._fd is None:
                self._open()
            if self.dropped:
                cut = "" if self._line_start else "\n"
                note = f"{cut}[aikore] {self.dropped} bytes of output were dropped: {self._error} ({stamp()})\n"
                self._landed = 0
                self._write(note.encode())
        except OSError as exc:
            self._error = exc.strerror or str(exc)
            return False
        self.dropped = 0
        return True

    def rotate(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.backups == 0:
            # No backups kept: start a fresh file; the old one is not truncated in place.
            self.path.replace(backup_path(self.path, 1))
            backup_path(self.path, 1).unlink(missing_ok=True)
        else:
            for index in range(self.backups - 1, 0, -1):
                older = backup_path(self.path, index)
                if older.exists():
                    older.replace(backup_path(self.path, index + 1))
            self.path.replace(backup_path(self.path, 1))
        self._line_len = 0
        self._open()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class PhaseFile:
    """The phase the command last reported, kept in ``path`` as JSON (written whole, by rename).

    ``{"pid": <this writer>, "phase": NAME, "fraction": 0..1 or null, "since": <unix time the phase
    began>, "started": <unix time this launch began>}``; the pid tells AiKore the file belongs to
    the launch it watches, not to an earlier one.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.started = time.time()
        self.phase: str | None = None
        self.since = self.started
        self._line = b""
        # Inside a line too long to be a marker: skip to its end.
        self._skipping = False
        # A phase file of an earlier launch says nothing about this one.
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)

    def feed(self, data: bytes) -> None:
        """Look at output as it passes; whole marker lines change the phase."""
        parts = data.split(b"\n")
        for part in parts[:-1]:
            if not self._skipping:
                self._consider(self._line + part)
            self._line, self._skipping = b"", False
        if not self._skipping:
            pending = self._line + parts[-1]
            self._skipping = len(pending) > _PHASE_LINE_MAX
            self._line = b"" if self._skipping else pending

    def _consider(self, line: bytes) -> None:
        if PHASE_MARKER not in line:
            return
        # What a terminal would show: the text after the last carriage return (progress bars).
        line = line.rstrip(b"\r").rsplit(b"\r", 1)[-1]
        found = _PHASE_LINE.match(line)
        if found is None:
            return
        phase = found.group(1).decode()
        fraction = float(found.group(2)) if found.group(2) else None
        if phase != self.phase:
            self.phase, self.since = phase, time.time()
        self._write({"pid": os.getpid(), "phase": phase, "fraction": fraction, "since": self.since,
                     "started": self.started})

    def _write(self, state: dict[str, object]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(state))
            os.replace(tmp, self.path)
        except OSError:
            # A full disk costs the progress display, never the instance's output.
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)


def exit_status(returncode: int) -> int:
    """Popen's ``-SIG`` for a signal death becomes the shell's ``128 + SIG``."""
    return 128 - returncode if returncode < 0 else returncode


def stamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())


def pump(fd: int, child: subprocess.Popen[bytes], out: RotatingFile, phases: PhaseFile | None = None) -> None:
    """Copy the pipe to the log until every writer closed it, or the command ended and it went quiet."""
    exited_at: float | None = None
    while True:
        if exited_at is None and child.poll() is not None:
            exited_at = time.monotonic()
        ready, _, _ = select.select([fd], [], [], _POLL)
        if ready:
            data = os.read(fd, _CHUNK)
            if not data:
                return
            out.write(data)
            if phases is not None:
                phases.feed(data)
        elif exited_at is not None:
            return
        if exited_at is not None and time.monotonic() - exited_at > _DRAIN_AFTER_EXIT:
            return


def write_status(path: Path, exit_code: int) -> None:
    """Leave the exit status where a re-started AiKore (not this process's parent) can read it.

    On a full disk it is not written: AiKore, if it is this writer's parent, knows the status anyway.
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps({"pid": os.getpid(), "exit_code": exit_code, "time": time.time()}))
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


def join_cgroup(cgroup: Path) -> str | None:
    """Move this writer into the launch's cgroup before the command starts; None, or why it failed."""
    try:
        (cgroup / "cgroup.procs").write_text(str(os.getpid()))
    except OSError as exc:
        return f"{exc.strerror or exc}"
    return None


def _note_signal(signum: int, frame: object) -> None:
    # The stop signal goes to the whole group; this writer stays to record the command's last
    # words and its exit status. A handler (unlike SIG_IGN) is reset for the command on exec.
    return None


def run(
    log: Path, max_bytes: int, backups: int, status: Path | None, banner: str, cmd: Sequence[str],
    cgroup: Path | None = None, phase: Path | None = None,
) -> int:
    # First of all, so that everything the command ever starts is born in the cgroup.
    joined = join_cgroup(cgroup) if cgroup is not None else None
    out = RotatingFile(log, max_bytes, backups)
    phases = PhaseFile(phase) if phase is not None else None
    out.write(f"\n===== {stamp()} {banner} (logwriter pid {os.getpid()}) =====\n".encode())
    if joined is not None:
        out.write(f"[aikore] could not join cgroup {cgroup}: {joined}; the launch is tracked without it\n".encode())
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _note_signal)
    read_fd, write_fd = os.pipe()
    try:
        child = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=write_fd, stderr=write_fd)
    except OSError as exc:
        out.write(f"[aikore] cannot run {' '.join(cmd)!r}: {exc}\n".encode())
        code = 127
    else:
        os.close(write_fd)
        pump(read_fd, child, out, phases)
        code = exit_status(child.wait())
    out.write(f"===== {stamp()} exited with code {code} =====\n".encode())
    out.close()
    if status is not None:
        write_status(status, code)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aikore.supervisor.logwriter")
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--max-bytes", type=int, default=10 * 1024 * 1024)
    parser.add_argument("--backups", type=int, default=5)
    parser.add_argument("--status", type=Path, default=None)
    parser.add_argument("--banner", default="start")
    parser.add_argument("--cgroup", type=Path, default=None)
    parser.add_argument("--phase", type=Path, default=None)
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("a command to run is required after --")
    return run(args.log, args.max_bytes, args.backups, args.status, args.banner, cmd, args.cgroup, args.phase)


if __name__ == "__main__":
    sys.exit(main())
