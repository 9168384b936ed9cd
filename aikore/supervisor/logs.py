"""Instance log files: where they live, the last lines, a live follow, and the whole history.

The writing side is ``aikore.supervisor.logwriter`` (a process in the instance's own group); AiKore only
reads. Files: ``instances/<name>/logs/instance.log`` (current) and ``instance.log.1..N`` (older),
``<role>.log`` likewise for companion process groups.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

from aikore.supervisor.logwriter import backup_path

LOG_DIR = "logs"
# The main process logs to instance.log; a companion group (e.g. a desktop) to <role>.log.
MAIN_LOG = "instance"
_BLOCK = 64 * 1024
# A tail never reads more than this much, however long the lines (a binary blob in the log...).
_TAIL_MAX_BYTES = 8 * 1024 * 1024
_FOLLOW_POLL = 0.25


# The logwriter's banner at the top of each launch's output ("===== <time> start of <name> … =====").
_RUN_START = re.compile(r"^===== .* start of .* =====$")


def this_run(lines: list[str]) -> list[str]:
    """The non-blank lines of the latest launch: those after its start banner (all of them when the
    banner is further back), so a failure never shows what an earlier run printed."""
    starts = [i for i, line in enumerate(lines) if _RUN_START.match(line)]
    return [line for line in lines[starts[-1] + 1 if starts else 0:] if line.strip()]


class InstanceLog:
    """The log files of one instance folder."""

    def __init__(self, folder: Path, backups: int, name: str = MAIN_LOG) -> None:
        self.dir = folder / LOG_DIR
        self.path = self.dir / f"{name}.log"
        # Written by the logwriter when its command exits: a re-started AiKore reads exit codes of
        # adopted processes (not its children, so it cannot wait for them) from here.
        self.status_path = self.dir / f"{name}.exit.json"
        # Written by the logwriter when the command reports an install phase (``phases.Progress``).
        self.phase_path = self.dir / f"{name}.phase.json"
        self.backups = backups

    def files(self) -> list[Path]:
        """Existing files, oldest first."""
        older = [backup_path(self.path, i) for i in range(max(self.backups, 0) + 1, 0, -1)]
        return [p for p in (*older, self.path) if p.is_file()]

    def tail(self, lines: int) -> list[str]:
        """The last ``lines`` lines across the current file and its backups."""
        if lines <= 0:
            return []
        collected = b""
        for path in reversed(self.files()):
            try:
                with path.open("rb") as f:
                    collected = _tail_bytes(f.fileno(), os.fstat(f.fileno()).st_size, lines + 1) + collected
            except FileNotFoundError:
                continue  # rotated away between listing and opening
            if collected.count(b"\n") > lines or len(collected) >= _TAIL_MAX_BYTES:
                break
        return _decode_lines(collected)[-lines:]

    def last_exit(self, pid: int) -> int | None:
        """The exit code the logwriter ``pid`` recorded, if that is the one that wrote the status."""
        try:
            status = json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            return None
        if isinstance(status, dict) and status.get("pid") == pid and isinstance(status.get("exit_code"), int):
            return int(status["exit_code"])
        return None

    async def follow(self, backfill: int, closing: asyncio.Event) -> AsyncIterator[str]:
        """The last ``backfill`` lines as one chunk, then new text as it is written, across rotations."""
        fd = await self._open_when_present(closing)
        if fd is None:
            return
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            size = os.fstat(fd).st_size
            head = _tail_bytes(fd, size, backfill + 1) if backfill > 0 else b""
            lines = _decode_lines(head)[-backfill:] if backfill > 0 else []
            yield "".join(line + "\n" for line in lines)
            offset = size
            while not closing.is_set():
                data = os.pread(fd, _BLOCK, offset)
                if data:
                    offset += len(data)
                    yield decoder.decode(data)
                    continue
                if self._rotated(fd):
                    # Files that came and went between two polls (several rotations) are read whole.
                    for missed in self._newer_backups(os.fstat(fd).st_ino):
                        with contextlib.suppress(FileNotFoundError):
                            yield decoder.decode(await asyncio.to_thread(missed.read_bytes))
                    os.close(fd)
                    fd, offset = os.open(self.path, os.O_RDONLY), 0
                    continue
                await _wait(closing, _FOLLOW_POLL)
        finally:
            os.close(fd)

    def _newer_backups(self, inode: int) -> list[Path]:
        """Backups newer than the one with ``inode`` (the file we were reading), oldest first."""
        for index in range(1, self.backups + 1):
            try:
                if os.stat(backup_path(self.path, index)).st_ino == inode:
                    return [backup_path(self.path, i) for i in range(index - 1, 0, -1)]
            except FileNotFoundError:
                continue
        return []

    def _rotated(self, fd: int) -> bool:
        # The logwriter renamed our file to .1 and made a new one: switch once the old one is drained.
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (current.st_ino, current.st_dev) != (mine.st_ino, mine.st_dev)

    async def _open_when_present(self, closing: asyncio.Event) -> int | None:
        while not closing.is_set():
            try:
                return os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                await _wait(closing, _FOLLOW_POLL)
        return None

    async def chunks(self) -> AsyncIterator[bytes]:
        """Every kept byte, oldest file first (for downloads)."""
        for path in self.files():
            try:
                f = path.open("rb")
            except FileNotFoundError:
                continue
            with f:
                while chunk := await asyncio.to_thread(f.read, _BLOCK):
                    yield chunk


def _tail_bytes(fd: int, size: int, newlines: int) -> bytes:
    """The end of a file holding at least ``newlines`` newlines (or all of it), read backwards."""
    data = b""
    pos = size
    while pos > 0 and data.count(b"\n") < newlines and len(data) < _TAIL_MAX_BYTES:
        step = min(_BLOCK, pos)
        pos -= step
        data = os.pread(fd, step, pos) + data
    return data


def _decode_lines(data: bytes) -> list[str]:
    text = data.decode("utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


async def _wait(event: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        pass
