"""The sampler: system figures, per-instance process trees (real children), history and interval."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import namedtuple
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aikore.monitor.gpu import Gpus
from aikore.monitor.sampler import MAX_HISTORY_SAMPLES, InstanceUsage, Monitor, Sample, _busy_and_total
from tests.helpers import wait_until

MIB = 2**20
DEADLINE = 30.0

# Root of a fake instance: one child burning CPU, one holding 64 MiB, itself idle. SIGCHLD is
# ignored so a killed child is reaped at once instead of lingering as a zombie.
_TREE = r"""
import signal, subprocess, sys, time
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
hold = subprocess.Popen([sys.executable, "-c",
    "import time; b = bytearray(64 * 2**20); b[::4096] = b'x' * len(b[::4096]);"
    "print('held', flush=True); time.sleep(600)"], stdout=subprocess.PIPE)
hold.stdout.readline()
print(busy.pid, hold.pid, flush=True)
time.sleep(600)
"""


class Tree:
    def __init__(self, root: subprocess.Popen[str], busy: int, hold: int) -> None:
        self.root, self.busy, self.hold = root, busy, hold

    @property
    def pids(self) -> set[int]:
        return {self.root.pid, self.busy, self.hold}


def _spawn(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True, start_new_session=True)


def _stop(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=DEADLINE)


@pytest.fixture
def tree() -> Iterator[Tree]:
    """A real three-process tree standing in for an instance."""
    root = _spawn([sys.executable, "-c", _TREE])
    assert root.stdout is not None
    busy, hold = (int(pid) for pid in root.stdout.readline().split())
    yield Tree(root, busy, hold)
    _stop(root)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[str]]:
    """A second, idle instance."""
    proc = _spawn([sys.executable, "-c", "import time; time.sleep(600)"])
    yield proc
    _stop(proc)


def _monitor(tmp_path: Path, pids: dict[int, Any] | None = None, **kwargs: Any) -> Monitor:
    kwargs.setdefault("gpus", Gpus.disabled("no GPU in tests"))
    return Monitor(data_dir=tmp_path, instance_pids=lambda: pids or {}, **kwargs)


def _sample_until(monitor: Monitor, condition: Callable[[Sample], bool]) -> Sample:
    """Sample every 0.3 s until the condition holds; CPU percents need time between ticks."""

    def holding() -> Sample:
        sample = monitor.sample_now()
        assert condition(sample), f"last sample {sample.to_json()}"
        return sample

    return wait_until(holding, DEADLINE, what="the condition on a sample", interval=0.3)


def _usage(sample: Sample, instance_id: int) -> InstanceUsage:
    usage = sample.instance(instance_id)
    assert usage is not None
    return usage


def _meminfo_bytes(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, value = line.split(":")
        if name == key:
            return int(value.split()[0]) * 1024
    raise KeyError(key)


def test_system_figures_match_the_kernel(tmp_path: Path) -> None:
    system = _sample_until(_monitor(tmp_path), lambda s: None not in s.system.cpu_percent_per_core).system
    cores = sum(1 for line in Path("/proc/stat").read_text().splitlines() if line[:3] == "cpu" and line[3].isdigit())
    assert len(system.cpu_percent_per_core) == cores
    assert system.cpu_percent is not None and 0.0 <= system.cpu_percent <= 100.0
    assert all(percent is not None and 0.0 <= percent <= 100.0 for percent in system.cpu_percent_per_core)
    assert system.memory_total_bytes == _meminfo_bytes("MemTotal")
    assert system.swap_total_bytes == _meminfo_bytes("SwapTotal")
    assert 0 < system.memory_used_bytes < system.memory_total_bytes
    assert system.memory_used_bytes + system.memory_available_bytes == system.memory_total_bytes
    stat = os.statvfs(tmp_path)
    assert system.disk_path == str(tmp_path)
    assert system.disk_total_bytes == stat.f_blocks * stat.f_frsize
    assert len(system.load_average) == 3 and all(load >= 0 for load in system.load_average)


def test_vanished_data_dir_reports_null_disk_and_keeps_sampling(tmp_path: Path) -> None:
    monitor = _monitor(tmp_path / "gone")
    disk = monitor.sample_now().to_json()["system"]["disk"]
    assert disk["total_bytes"] is None and disk["percent"] is None


_Times = namedtuple("_Times", "user nice system idle iowait irq softirq steal guest guest_nice")


def test_cpu_busy_share_counts_iowait_as_idle_and_guest_once() -> None:
    before = _Times(100, 0, 50, 800, 50, 0, 0, 0, 10, 0)
    # +30 user (5 of it guest, already inside user), +10 system, +50 idle, +10 iowait
    after = _Times(130, 0, 60, 850, 60, 0, 0, 0, 15, 0)
    assert _busy_and_total(before, after) == (40, 100)


def test_instance_usage_sums_cpu_and_rss_over_the_whole_process_tree(tmp_path: Path, tree: Tree) -> None:
    monitor = _monitor(tmp_path, {7: tree.root.pid})
    sample = _sample_until(monitor, lambda s: (_usage(s, 7).cpu_percent or 0) >= 20)
    usage = _usage(sample, 7)
    assert usage.pid == tree.root.pid
    assert usage.process_count == 3
    assert usage.rss_bytes is not None and usage.rss_bytes >= 64 * MIB
    assert usage.gpu_memory == {} and usage.gpu_memory_bytes is None
    assert usage.to_json()["running"] is True


def test_instances_are_accounted_separately(tmp_path: Path, tree: Tree, sleeper: subprocess.Popen[str]) -> None:
    monitor = _monitor(tmp_path, {1: tree.root.pid, 2: sleeper.pid})
    sample = _sample_until(monitor, lambda s: (_usage(s, 1).cpu_percent or 0) >= 20)
    busy, idle = _usage(sample, 1), _usage(sample, 2)
    assert (busy.process_count, idle.process_count) == (3, 1)
    assert idle.rss_bytes is not None and idle.rss_bytes < 64 * MIB < (busy.rss_bytes or 0)
    assert idle.cpu_percent is not None and idle.cpu_percent < 20
    assert [usage.id for usage in sample.instances] == [1, 2]


def test_companion_trees_count_as_the_instance(tmp_path: Path, tree: Tree, sleeper: subprocess.Popen[str]) -> None:
    # A persistent instance: the app's tree plus its desktop session's, both the instance's.
    monitor = _monitor(tmp_path, {5: (sleeper.pid, tree.root.pid), 6: sleeper.pid})
    sample = _sample_until(monitor, lambda s: (_usage(s, 5).cpu_percent or 0) >= 20)
    both, app_only = _usage(sample, 5), _usage(sample, 6)
    assert both.pid == sleeper.pid
    assert (both.process_count, app_only.process_count) == (4, 1)
    assert (both.rss_bytes or 0) > 64 * MIB > (app_only.rss_bytes or 0)


def test_a_child_that_exits_leaves_the_tree(tmp_path: Path, tree: Tree) -> None:
    monitor = _monitor(tmp_path, {7: tree.root.pid})
    _sample_until(monitor, lambda s: _usage(s, 7).process_count == 3)
    os.kill(tree.busy, signal.SIGKILL)
    _sample_until(monitor, lambda s: _usage(s, 7).process_count == 2)


def test_an_instance_whose_root_is_gone_reports_nulls(
    tmp_path: Path, sleeper: subprocess.Popen[str], fake_nvml
) -> None:
    fake_nvml.add_gpu(compute={sleeper.pid: 10 * MIB})
    pid = sleeper.pid
    _stop(sleeper)
    usage = _usage(_monitor(tmp_path, {3: pid}, gpus=Gpus.open(fake_nvml.load)).sample_now(), 3)
    assert usage.to_json() == {
        "id": 3,
        "pid": pid,
        "running": False,
        "process_count": 0,
        "cpu_percent": None,
        "rss_bytes": None,
        "gpu_memory_bytes": None,
        "gpus": [{"index": 0, "memory_bytes": None}],
    }


def test_vram_per_instance_matches_nvml_process_lists_against_the_tree(tmp_path: Path, tree: Tree, fake_nvml) -> None:
    fake_nvml.add_gpu(compute={tree.hold: 1024 * MIB, 1: 5000 * MIB})
    fake_nvml.add_gpu(graphics={tree.root.pid: 100 * MIB})
    fake_nvml.add_gpu()
    monitor = _monitor(tmp_path, {7: tree.root.pid}, gpus=Gpus.open(fake_nvml.load))
    usage = _usage(_sample_until(monitor, lambda s: _usage(s, 7).process_count == 3), 7)
    assert usage.gpu_memory == {0: 1024 * MIB, 1: 100 * MIB, 2: 0}
    assert usage.gpu_memory_bytes == 1124 * MIB
    assert usage.to_json()["gpus"] == [
        {"index": 0, "memory_bytes": 1024 * MIB},
        {"index": 1, "memory_bytes": 100 * MIB},
        {"index": 2, "memory_bytes": 0},
    ]


def test_no_gpu_path_gives_empty_list_and_a_reason(tmp_path: Path) -> None:
    def no_library() -> object:
        raise ImportError("No module named 'pynvml'")

    body = _monitor(tmp_path, gpus=Gpus.open(no_library)).sample_now().to_json()
    assert body["gpus"] == []
    assert "pynvml" in body["gpu_reason"]


def _string_leaves(value: Any, key: str = "") -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_string_leaves(item, name) for name, item in value.items()))
    if isinstance(value, list):
        return set().union(*(_string_leaves(item, key) for item in value))
    return {key} if isinstance(value, str) else set()


def test_sample_json_keeps_numbers_numbers(tmp_path: Path, tree: Tree, fake_nvml) -> None:
    fake_nvml.add_gpu(power_mw=None, compute={tree.hold: 10 * MIB})
    monitor = _monitor(tmp_path, {7: tree.root.pid, 8: 2**22 + 1}, gpus=Gpus.open(fake_nvml.load))
    body = json.loads(json.dumps(monitor.sample_now().to_json()))
    assert _string_leaves(body) <= {"name", "uuid", "path"}
    assert body["gpus"][0]["power_watts"] is None
    assert isinstance(body["system"]["memory"]["total_bytes"], int)
    assert isinstance(body["aikore"]["rss_bytes"], int) and body["aikore"]["pid"] == os.getpid()


def test_history_keeps_only_the_newest_window(tmp_path: Path) -> None:
    monitor = _monitor(tmp_path, interval=1.0, history_seconds=5)
    taken = [monitor.sample_now() for _ in range(8)]
    assert monitor.capacity == 5
    assert monitor.history() == taken[-5:]
    assert monitor.latest is taken[-1]
    assert monitor.history(since=taken[-2].time) == [taken[-1]]


def test_history_length_is_capped_whatever_the_window(tmp_path: Path) -> None:
    assert _monitor(tmp_path, interval=0.25, history_seconds=86400).capacity == MAX_HISTORY_SAMPLES


def test_interval_change_resizes_history_and_keeps_samples(tmp_path: Path) -> None:
    monitor = _monitor(tmp_path, interval=1.0, history_seconds=4)
    taken = [monitor.sample_now() for _ in range(4)]
    monitor.set_interval(0.5)
    assert (monitor.interval, monitor.capacity) == (0.5, 8)
    assert monitor.history() == taken
    monitor.set_interval(2.0)
    assert monitor.capacity == 2 and monitor.history() == taken[-2:]
    assert monitor.sample_now().interval == 2.0


@pytest.mark.parametrize("bad", [0.0, 0.1, 61.0, -1.0, float("nan")])
def test_interval_outside_bounds_is_refused(tmp_path: Path, bad: float) -> None:
    monitor = _monitor(tmp_path)
    with pytest.raises(ValueError, match="interval"):
        monitor.set_interval(bad)
    assert monitor.interval == 1.0


async def _next_sample(stream: Any) -> Sample:
    async with asyncio.timeout(DEADLINE):
        return await anext(stream)


async def test_running_sampler_applies_a_new_interval_at_once(tmp_path: Path) -> None:
    monitor = _monitor(tmp_path, interval=60.0)
    stream = monitor.stream()
    task = asyncio.create_task(monitor.run())
    try:
        first = await _next_sample(stream)
        assert first.interval == 60.0
        monitor.set_interval(0.25)
        # With the old interval the next sample would be a minute away.
        later = [await _next_sample(stream) for _ in range(3)]
        assert [sample.interval for sample in later] == [0.25] * 3
        assert later[-1].time - first.time < 20
    finally:
        task.cancel()
        await stream.aclose()
    assert monitor.latest is later[-1]


async def test_a_failing_tick_does_not_stop_the_sampler(tmp_path: Path) -> None:
    calls = 0

    def flaky() -> dict[int, int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("store not ready")
        return {}

    monitor = Monitor(data_dir=tmp_path, instance_pids=flaky, gpus=Gpus.disabled("none"), interval=0.25)
    stream = monitor.stream()
    task = asyncio.create_task(monitor.run())
    try:
        await _next_sample(stream)
    finally:
        task.cancel()
        await stream.aclose()
    assert calls >= 2


async def test_slow_stream_reader_skips_old_samples_without_blocking(tmp_path: Path) -> None:
    monitor = _monitor(tmp_path)
    stream = monitor.stream()
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)  # let the stream register its queue
    taken = [monitor.sample_now() for _ in range(20)]
    first = await pending
    rest = [await _next_sample(stream) for _ in range(7)]
    await stream.aclose()
    assert [first, *rest] == taken[-8:]


async def test_ending_streams_finishes_every_reader(tmp_path: Path) -> None:
    monitor = _monitor(tmp_path)
    streams = [monitor.stream() for _ in range(2)]
    readers = [asyncio.ensure_future(anext(stream, None)) for stream in streams]
    await asyncio.sleep(0)  # let both streams register
    monitor.end_streams()
    async with asyncio.timeout(DEADLINE):
        assert await asyncio.gather(*readers) == [None, None]


async def test_concurrent_samples_do_not_corrupt_each_other(tmp_path: Path, tree: Tree) -> None:
    monitor = _monitor(tmp_path, {7: tree.root.pid})
    samples = await asyncio.gather(*(monitor.sample_once() for _ in range(8)))
    assert all(_usage(sample, 7).process_count == 3 for sample in samples)
    assert len(monitor.history()) == 8


@pytest.mark.parametrize(
    ("per_gpu", "total"),
    [({}, None), ({0: 0, 1: 0}, 0), ({0: None}, None), ({0: None, 1: 5 * MIB}, 5 * MIB), ({0: MIB, 1: MIB}, 2 * MIB)],
)
def test_instance_vram_total_is_null_only_when_no_amount_is_known(
    per_gpu: dict[int, int | None], total: int | None
) -> None:
    usage = InstanceUsage(id=1, pid=1, cpu_percent=0.0, rss_bytes=0, process_count=1, gpu_memory=per_gpu)
    assert usage.gpu_memory_bytes == total
