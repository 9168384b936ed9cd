"""Sampler of system, GPU and per-instance usage, keeping a history ring for the dashboard.

One tick reads /proc once for the parent map, the cached `psutil.Process` objects of every
instance's process tree, and NVML once for all GPUs. The blocking reads run in a worker thread so
a slow GPU driver never stalls the proxy; everything else happens on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from aikore.config import MONITOR_INTERVAL_MAX, MONITOR_INTERVAL_MIN
from aikore.monitor.gpu import Gpus, GpuSample

log = logging.getLogger(__name__)

MIN_INTERVAL = MONITOR_INTERVAL_MIN
MAX_INTERVAL = MONITOR_INTERVAL_MAX
DEFAULT_HISTORY_SECONDS = 900.0
# Caps memory whatever the interval: 15 minutes at 0.25 s, about 20 MB with 20 instances.
MAX_HISTORY_SAMPLES = 3600
_STREAM_BACKLOG = 8

# Instance id -> its root pid, or its roots in order (the app first, then companions such as a
# persistent desktop session), whose trees are all counted as that instance.
InstancePids = Callable[[], Mapping[int, int | Sequence[int]]]


@dataclass(frozen=True, slots=True)
class SystemSample:
    """Machine-wide figures; cpu percents are 0-100 of the whole machine / of one core."""

    cpu_percent: float | None
    cpu_percent_per_core: list[float | None]
    memory_total_bytes: int
    memory_used_bytes: int
    memory_available_bytes: int
    memory_percent: float
    swap_total_bytes: int
    swap_used_bytes: int
    swap_percent: float
    load_average: tuple[float, float, float]
    disk_path: str
    disk_total_bytes: int | None
    disk_used_bytes: int | None
    disk_free_bytes: int | None
    disk_percent: float | None

    def to_json(self) -> dict[str, Any]:
        """The public JSON shape."""
        return {
            "cpu": {
                "percent": self.cpu_percent,
                "per_core": self.cpu_percent_per_core,
                "count": len(self.cpu_percent_per_core),
            },
            "memory": {
                "total_bytes": self.memory_total_bytes,
                "used_bytes": self.memory_used_bytes,
                "available_bytes": self.memory_available_bytes,
                "percent": self.memory_percent,
            },
            "swap": {
                "total_bytes": self.swap_total_bytes,
                "used_bytes": self.swap_used_bytes,
                "percent": self.swap_percent,
            },
            "load_average": list(self.load_average),
            "disk": {
                "path": self.disk_path,
                "total_bytes": self.disk_total_bytes,
                "used_bytes": self.disk_used_bytes,
                "free_bytes": self.disk_free_bytes,
                "percent": self.disk_percent,
            },
        }


@dataclass(frozen=True, slots=True)
class ProcessUsage:
    """CPU (percent of one core, summed over processes) and resident memory of a process tree."""

    cpu_percent: float
    rss_bytes: int
    process_count: int


@dataclass(frozen=True, slots=True)
class InstanceUsage:
    """One instance's process tree at one tick; `gpu_memory` maps GPU index to bytes held."""

    id: int
    pid: int
    cpu_percent: float | None
    rss_bytes: int | None
    process_count: int
    gpu_memory: dict[int, int | None] = field(default_factory=dict)

    @property
    def gpu_memory_bytes(self) -> int | None:
        """Total VRAM over all GPUs; None when no GPU is monitored or no amount is known."""
        known = [value for value in self.gpu_memory.values() if value is not None]
        return sum(known) if known else None

    def to_json(self) -> dict[str, Any]:
        """The public JSON shape (also the instance JSON's `usage`)."""
        return {
            "id": self.id,
            "pid": self.pid,
            "running": self.process_count > 0,
            "process_count": self.process_count,
            "cpu_percent": self.cpu_percent,
            "rss_bytes": self.rss_bytes,
            "gpu_memory_bytes": self.gpu_memory_bytes,
            "gpus": [{"index": index, "memory_bytes": used} for index, used in self.gpu_memory.items()],
        }


@dataclass(frozen=True, slots=True)
class Sample:
    """Everything measured in one tick."""

    time: float
    interval: float
    duration: float
    system: SystemSample
    gpus: list[GpuSample]
    gpu_reason: str | None
    instances: list[InstanceUsage]
    aikore: ProcessUsage

    def instance(self, instance_id: int) -> InstanceUsage | None:
        """The usage of one instance, or None when it was not running at this tick."""
        return next((usage for usage in self.instances if usage.id == instance_id), None)

    def to_json(self) -> dict[str, Any]:
        """The public JSON shape of `GET /api/system/stats` and of every history entry."""
        return {
            "time": self.time,
            "interval_seconds": self.interval,
            "sample_seconds": self.duration,
            "system": self.system.to_json(),
            "gpus": [gpu.to_json() for gpu in self.gpus],
            "gpu_reason": self.gpu_reason,
            "instances": [usage.to_json() for usage in self.instances],
            "aikore": {
                "pid": os.getpid(),
                "cpu_percent": self.aikore.cpu_percent,
                "rss_bytes": self.aikore.rss_bytes,
            },
        }


class Monitor:
    """Samples every `interval` seconds into a ring covering `history_seconds`."""

    def __init__(
        self,
        *,
        data_dir: Path,
        instance_pids: InstancePids,
        gpus: Gpus,
        interval: float = 1.0,
        history_seconds: float = DEFAULT_HISTORY_SECONDS,
    ) -> None:
        _check_interval(interval)
        self._data_dir = data_dir
        self._instance_pids = instance_pids
        self._gpus = gpus
        self._interval = interval
        self._history_seconds = history_seconds
        self._ring: deque[Sample] = deque(maxlen=self._capacity(interval))
        self._cpu = _CpuTimes()
        self._procs = _ProcessCache()
        # A stats request before the first tick samples beside the loop's tick; the CPU and process
        # baselines are shared state, so ticks never overlap.
        self._collect_lock = threading.Lock()
        self._self_proc = psutil.Process()
        self._self_proc.cpu_percent()
        self._wakeup = asyncio.Event()
        self._streams: set[asyncio.Queue[Sample | None]] = set()

    @property
    def gpus(self) -> Gpus:
        """The GPUs as NVML found them at startup (what instances' GPU IDs are checked against)."""
        return self._gpus

    @property
    def interval(self) -> float:
        """Seconds between ticks."""
        return self._interval

    @property
    def capacity(self) -> int:
        """How many samples the history keeps at the current interval."""
        return self._ring.maxlen or 0

    @property
    def history_seconds(self) -> float:
        """The time span the history ring covers."""
        return self._history_seconds

    @property
    def latest(self) -> Sample | None:
        """The newest sample, None before the first tick."""
        return self._ring[-1] if self._ring else None

    def history(self, since: float | None = None) -> list[Sample]:
        """Samples oldest first, only those taken after `since` (unix seconds) when given."""
        if since is None:
            return list(self._ring)
        return [sample for sample in self._ring if sample.time > since]

    def usage(self, instance_id: int) -> InstanceUsage | None:
        """The latest usage of one instance, None when unknown or not running."""
        latest = self.latest
        return None if latest is None else latest.instance(instance_id)

    def set_interval(self, interval: float) -> None:
        """Change the tick interval now; the ring is resized to keep covering the same span."""
        _check_interval(interval)
        self._interval = interval
        self._ring = deque(self._ring, maxlen=self._capacity(interval))
        self._wakeup.set()

    def sample_now(self) -> Sample:
        """Take one sample synchronously and record it (tests and one-off probes)."""
        sample = self._collect(dict(self._instance_pids()))
        self._record(sample)
        return sample

    async def sample_once(self) -> Sample:
        """Take one sample with the blocking reads in a worker thread, and record it."""
        # The pid map is read on the loop: it comes from state the loop mutates.
        roots = dict(self._instance_pids())
        sample = await asyncio.get_running_loop().run_in_executor(None, self._collect, roots)
        self._record(sample)
        return sample

    async def run(self) -> None:
        """Sample forever; a failing tick is logged and the next one is tried."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self.sample_once()
            except Exception:
                log.exception("monitor tick failed")
            self._wakeup.clear()
            delay = max(0.0, self._interval - (loop.time() - started))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wakeup.wait()

    async def stream(self) -> AsyncIterator[Sample]:
        """Every new sample as it is taken, until `end_streams()`; a slow reader skips old ones."""
        queue: asyncio.Queue[Sample | None] = asyncio.Queue(maxsize=_STREAM_BACKLOG)
        self._streams.add(queue)
        try:
            while (sample := await queue.get()) is not None:
                yield sample
        finally:
            self._streams.discard(queue)

    def end_streams(self) -> None:
        """Finish every open stream, so live views return when the server shuts down."""
        for queue in self._streams:
            _put_dropping_oldest(queue, None)
        self._streams.clear()

    def close(self) -> None:
        """Release NVML (blocking; safe from a worker thread, unlike `end_streams`)."""
        self._gpus.close()

    def _capacity(self, interval: float) -> int:
        return max(1, min(MAX_HISTORY_SAMPLES, math.ceil(self._history_seconds / interval)))

    def _record(self, sample: Sample) -> None:
        self._ring.append(sample)
        for queue in self._streams:
            _put_dropping_oldest(queue, sample)

    def _collect(self, roots: Mapping[int, int | Sequence[int]]) -> Sample:
        with self._collect_lock:
            return self._collect_unlocked(roots)

    def _collect_unlocked(self, roots: Mapping[int, int | Sequence[int]]) -> Sample:
        started = time.perf_counter()
        now = time.time()
        system = self._system()
        gpus = self._gpus.sample()
        children = _children_by_parent(_parent_map()) if roots else {}
        self._procs.begin_tick()
        instances = [
            self._instance(iid, (pids,) if isinstance(pids, int) else tuple(pids), children, gpus)
            for iid, pids in sorted(roots.items())
        ]
        self._procs.end_tick()
        with self._self_proc.oneshot():
            own = ProcessUsage(self._self_proc.cpu_percent(), self._self_proc.memory_info().rss, 1)
        return Sample(
            time=now,
            interval=self._interval,
            duration=time.perf_counter() - started,
            system=system,
            gpus=gpus,
            gpu_reason=self._gpus.reason,
            instances=instances,
            aikore=own,
        )

    def _instance(
        self, instance_id: int, roots: tuple[int, ...], children: Mapping[int, list[int]], gpus: list[GpuSample]
    ) -> InstanceUsage:
        tree = frozenset(pid for root in roots for pid in _tree(root, children))
        usage = self._procs.measure(tree)
        alive = usage.process_count > 0
        return InstanceUsage(
            id=instance_id,
            pid=roots[0],
            cpu_percent=usage.cpu_percent if alive else None,
            rss_bytes=usage.rss_bytes if alive else None,
            process_count=usage.process_count,
            gpu_memory={gpu.index: _vram(gpu, tree) if alive else None for gpu in gpus},
        )

    def _system(self) -> SystemSample:
        total, per_core = self._cpu.percents()
        memory = psutil.virtual_memory()
        swap = psutil.swap_memory()
        disk = _disk_usage(self._data_dir)
        return SystemSample(
            cpu_percent=total,
            cpu_percent_per_core=per_core,
            memory_total_bytes=memory.total,
            # total - available, not psutil's `used`: it is what runs out first.
            memory_used_bytes=memory.total - memory.available,
            memory_available_bytes=memory.available,
            memory_percent=memory.percent,
            swap_total_bytes=swap.total,
            swap_used_bytes=swap.used,
            swap_percent=swap.percent,
            load_average=os.getloadavg(),
            disk_path=str(self._data_dir),
            disk_total_bytes=None if disk is None else disk.total,
            disk_used_bytes=None if disk is None else disk.used,
            disk_free_bytes=None if disk is None else disk.free,
            disk_percent=None if disk is None else disk.percent,
        )


def _put_dropping_oldest(queue: asyncio.Queue[Sample | None], item: Sample | None) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(item)


def _check_interval(interval: float) -> None:
    if not MIN_INTERVAL <= interval <= MAX_INTERVAL:
        raise ValueError(f"monitor interval must be {MIN_INTERVAL}-{MAX_INTERVAL} seconds, got {interval!r}")


def _disk_usage(path: Path) -> Any:
    try:
        return psutil.disk_usage(str(path))
    except OSError:  # data dir removed or on a vanished mount: report null, keep sampling
        return None


def _vram(gpu: GpuSample, pids: frozenset[int]) -> int | None:
    held = [gpu.process_memory[pid] for pid in pids if pid in gpu.process_memory]
    if any(value is None for value in held):
        return None
    return sum(value for value in held if value is not None)


class _CpuTimes:
    """Busy percentage per core since the previous call, from one read of /proc/stat.

    Kept here rather than psutil.cpu_percent(), whose baseline is process-global and would be
    moved by any other caller.
    """

    def __init__(self) -> None:
        self._last = psutil.cpu_times(percpu=True)

    def percents(self) -> tuple[float | None, list[float | None]]:
        current = psutil.cpu_times(percpu=True)
        pairs = list(zip(self._last, current, strict=False))
        self._last = current
        busy_total = [_busy_and_total(before, after) for before, after in pairs]
        per_core = [_percent(busy, total) for busy, total in busy_total]
        overall = _percent(sum(b for b, _ in busy_total), sum(t for _, t in busy_total))
        return overall, per_core


def _busy_and_total(before: Any, after: Any) -> tuple[float, float]:
    def split(times: Any) -> tuple[float, float]:
        total = sum(times)
        # guest time is already counted in user/nice on Linux
        total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
        idle = times.idle + getattr(times, "iowait", 0.0)
        return total - idle, total

    busy_before, total_before = split(before)
    busy_after, total_after = split(after)
    return max(0.0, busy_after - busy_before), max(0.0, total_after - total_before)


def _percent(busy: float, total: float) -> float | None:
    if total <= 0:
        return None
    return round(min(100.0, 100.0 * busy / total), 1)


class _ProcessCache:
    """`psutil.Process` objects kept between ticks so each cpu_percent() covers one interval."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}
        self._seen: set[int] = set()

    def begin_tick(self) -> None:
        self._seen = set()

    def end_tick(self) -> None:
        """Forget processes that left every tree, so a reused pid starts a fresh baseline."""
        for pid in self._procs.keys() - self._seen:
            del self._procs[pid]

    def measure(self, pids: Iterable[int]) -> ProcessUsage:
        cpu, rss, count = 0.0, 0, 0
        for pid in pids:
            proc = self._get(pid)
            if proc is None:
                continue
            try:
                with proc.oneshot():
                    cpu += proc.cpu_percent()
                    rss += proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            self._seen.add(pid)
            count += 1
        return ProcessUsage(round(cpu, 1), rss, count)

    def _get(self, pid: int) -> psutil.Process | None:
        proc = self._procs.get(pid)
        if proc is not None:
            return proc
        try:
            proc = psutil.Process(pid)
            # The first call only sets the baseline: a new process counts 0 % until the next tick.
            proc.cpu_percent()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None
        self._procs[pid] = proc
        return proc


def _tree(root: int, children: Mapping[int, list[int]]) -> list[int]:
    """The root and all its descendants; the root is kept even if the parent map missed it."""
    found, pending = [root], [root]
    while pending:
        for child in children.get(pending.pop(), ()):
            found.append(child)
            pending.append(child)
    return found


def _children_by_parent(parents: Mapping[int, int]) -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        if pid != ppid:
            children.setdefault(ppid, []).append(pid)
    return children


def _parent_map() -> dict[int, int]:
    """pid -> parent pid of every process, in one pass over /proc (psutil's fallback elsewhere).

    psutil's Process.children() rescans all of /proc per call; one scan per tick is what keeps
    20 instances under the CPU budget.
    """
    if not os.path.isdir("/proc/self"):
        return {proc.pid: proc.info["ppid"] for proc in psutil.process_iter(["ppid"])}
    parents: dict[int, int] = {}
    with os.scandir("/proc") as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as stat:
                    data = stat.read()
            except OSError:  # exited during the scan
                continue
            # The command name may hold spaces and parentheses; fields after the last ')' do not.
            parents[int(entry.name)] = int(data[data.rfind(b")") + 2 :].split(b" ", 2)[1])
    return parents
