"""One cgroup (v2) per launch, where the OS lets AiKore make one: nothing of a launch escapes a stop.

A process can leave its process group (``setsid``), its parent's tree (double fork) and its
environment (``env -i``), but not its cgroup: every descendant is born in it. Where the unified
hierarchy is mounted and writable (root, or a delegated subtree), AiKore makes
``<its own cgroup>/aikore/<launch id>``; the launch's logwriter moves itself there before it runs
the instance command, so the whole launch lives in it. A stop signals every member and ends with
``cgroup.kill``. Elsewhere (an unprivileged container, cgroup v1 only) ``Cgroups.base`` is None
and the process tree + launch-marker search of ``oskit`` is all there is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

_PARENT = "aikore"
# Empty launch cgroups older than this that no launch uses are removed at start (a crashed
# AiKore's leftovers); younger ones may belong to a launch being spawned by another AiKore.
_STALE_AFTER = 600.0


def unified_mount(mountinfo: str) -> tuple[Path, str] | None:
    """The cgroup2 mount point and the hierarchy path mounted there, from /proc/self/mountinfo."""
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        if right.split()[:1] == ["cgroup2"] and len(fields) >= 5:
            return Path(fields[4]), fields[3]
    return None


def own_cgroup(proc_cgroup: str) -> str | None:
    """This process's path in the unified hierarchy, from /proc/self/cgroup (the ``0::`` line)."""
    for line in proc_cgroup.splitlines():
        if line.startswith("0::"):
            return line[3:].strip() or "/"
    return None


def detect_base() -> Path | None:
    """Where launch cgroups go (created and checked writable), or None where the OS does not allow it."""
    try:
        mount = unified_mount(Path("/proc/self/mountinfo").read_text())
        own = own_cgroup(Path("/proc/self/cgroup").read_text())
    except OSError:
        return None
    if mount is None or own is None:
        return None
    point, root = mount
    if root != "/" and not (own == root or own.startswith(root.rstrip("/") + "/")):
        return None
    relative = own[len(root):] if root != "/" else own
    base = point / relative.lstrip("/") / _PARENT
    try:
        base.mkdir(exist_ok=True)
        probe = base / f"probe-{os.getpid()}"
        probe.mkdir(exist_ok=True)
        probe.rmdir()
    except OSError as exc:
        log.info("cgroups: cannot make cgroups under %s (%s); instances are tracked by tree and marker", base, exc)
        return None
    return base


class Cgroups:
    """Launch cgroups under ``base`` (None: not available here, every method is a no-op)."""

    def __init__(self, base: Path | None) -> None:
        self.base = base

    def create(self, launch_id: str) -> str | None:
        """A fresh cgroup for one launch; None if it cannot be made (the launch runs without one)."""
        if self.base is None:
            return None
        path = self.base / launch_id
        try:
            path.mkdir()
        except OSError as exc:
            log.warning("cgroups: cannot make %s: %s", path, exc)
            return None
        return str(path)

    def prune(self, keep: set[str]) -> None:
        """Remove empty launch cgroups a crashed AiKore left, except those in ``keep``."""
        if self.base is None:
            return
        now = time.time()
        with contextlib.suppress(OSError):
            for child in self.base.iterdir():
                if str(child) in keep or not child.is_dir():
                    continue
                with contextlib.suppress(OSError):
                    if now - child.stat().st_mtime > _STALE_AFTER and not populated(str(child)):
                        child.rmdir()


def members(path: str | None) -> list[int]:
    """Every pid in the cgroup and its descendants (none when it is gone or unknown)."""
    if not path:
        return []
    found: list[int] = []
    for folder, _dirs, files in os.walk(path):
        if "cgroup.procs" not in files:
            continue
        with contextlib.suppress(OSError, ValueError):
            found.extend(int(line) for line in Path(folder, "cgroup.procs").read_text().split())
    return found


def populated(path: str | None) -> bool:
    """Whether any process is left in the cgroup (or below it)."""
    if not path:
        return False
    try:
        events = Path(path, "cgroup.events").read_text()
    except OSError:
        return False
    return "populated 1" in events


def kill(path: str | None) -> bool:
    """SIGKILL every process in the cgroup at once (``cgroup.kill``, Linux 5.14+); False if unavailable."""
    if not path:
        return False
    try:
        Path(path, "cgroup.kill").write_text("1")
    except OSError:
        return False
    return True


def remove(path: str | None) -> None:
    """Remove an emptied launch cgroup (and any it grew); left in place while a process remains."""
    if not path:
        return
    for folder, _dirs, _files in sorted(os.walk(path), key=lambda entry: -len(entry[0])):
        with contextlib.suppress(OSError):
            os.rmdir(folder)
