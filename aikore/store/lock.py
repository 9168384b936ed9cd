"""The data dir's lock: one AiKore per data dir, for the life of its process.

Two AiKores on one data dir would both adopt, start and stop the same instances (a start through
each makes two live copies; the loser of a port clash stops everything on its way out). The first
holds an exclusive ``flock`` on ``<data>/aikore.lock`` until it exits - the kernel drops it even on
``kill -9`` - and writes who it is there; a second one reads that, says so, and exits without
touching anything.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from aikore.store.faults import Unusable

LOCK_FILE = "aikore.lock"


class DataDirLock:
    """Held from ``acquire`` until ``release`` (or the process's end)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, data_dir: Path) -> DataDirLock:
        """Lock ``data_dir`` or raise ``Unusable`` naming the AiKore that holds it."""
        path = data_dir / LOCK_FILE
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            # O_CLOEXEC (Python's default): no instance inherits it, so the lock dies with AiKore.
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise Unusable(
                f"cannot lock the data dir {data_dir} ({path}: {exc.strerror or exc}); AiKore needs it writable"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd) or "another AiKore"
            os.close(fd)
            raise Unusable(
                f"the data dir {data_dir} is in use by {holder}. Only one AiKore may manage a data dir; "
                "stop that one first, or give this one another --data-dir. Nothing was touched."
            ) from None
        lock = cls(path, fd)
        lock.describe(f"AiKore pid {os.getpid()} (started {time.strftime('%Y-%m-%d %H:%M:%S %Z')})")
        return lock

    def describe(self, holder: str) -> None:
        """Say who holds the lock (shown to a second AiKore)."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{holder}\n".encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _read(fd: int) -> str:
    try:
        return os.pread(fd, 4096, 0).decode(errors="replace").strip()
    except OSError:
        return ""
