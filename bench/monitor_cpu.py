"""Measure the CPU AiKore spends on monitoring while 20 instances run.

    python bench/monitor_cpu.py                 # in-process sampler, 20 process trees, 60 s
    python bench/monitor_cpu.py --aikore        # a real `aikore` process with 20 demo instances

Each stand-in instance is a tree like a real launch: `bash launch.sh` -> a helper and the python
app -> its worker (80 processes in all). In-process mode runs `Monitor.run()` at the given interval in this
otherwise idle process and reports its CPU time per wall second: the sampler's cost alone.

`--aikore` starts AiKore itself, creates and starts 20 instances of the built-in demo blueprint
through the API, then measures the AiKore process's CPU twice: with the sampler at the interval
(1 s) and at 60 s, so the difference is what sampling costs inside the real server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aikore.monitor.gpu import Gpus
from aikore.monitor.sampler import Monitor

# bash (the launch script) -> a `sleep` helper and the python app -> its python worker.
_APP = (
    "import subprocess, sys, time; "
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3600)']); time.sleep(3600)"
)
_TREE = 'sleep 3600 & "$0" -c "$1"'


@contextmanager
def stand_in_instances(count: int) -> Iterator[dict[int, int]]:
    """`count` process trees of four processes each; yields instance id -> root pid."""
    roots = [
        subprocess.Popen(["bash", "-c", _TREE, sys.executable, _APP], start_new_session=True) for _ in range(count)
    ]
    try:
        _wait_for(lambda: all(len(psutil.Process(p.pid).children(recursive=True)) >= 3 for p in roots), "trees")
        yield {index + 1: proc.pid for index, proc in enumerate(roots)}
    finally:
        for proc in roots:
            with _suppress_gone():
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def measure_in_process(count: int, interval: float, seconds: float) -> dict[str, Any]:
    """CPU % of one core this process spends running the sampler."""
    with stand_in_instances(count) as pids, tempfile.TemporaryDirectory() as data_dir:
        monitor = Monitor(data_dir=Path(data_dir), instance_pids=lambda: pids, gpus=Gpus.open(), interval=interval)
        sample = asyncio.run(_run_for(monitor, seconds))
        monitor.close()
        cpu = sample["cpu_seconds"] / sample["wall_seconds"] * 100
        return {
            "mode": "in-process sampler",
            "instances": count,
            "processes_per_instance": sample["processes"] // count,
            "interval_seconds": interval,
            "wall_seconds": round(sample["wall_seconds"], 1),
            "ticks": sample["ticks"],
            "cpu_percent_of_one_core": round(cpu, 2),
            "mean_tick_ms": round(sample["tick_seconds"] / max(sample["ticks"], 1) * 1000, 2),
            "gpus": sample["gpus"],
        }


async def _run_for(monitor: Monitor, seconds: float) -> dict[str, Any]:
    task = asyncio.create_task(monitor.run())
    await asyncio.sleep(2 * monitor.interval)  # warm up: caches filled, first ticks done
    before = len(monitor.history())
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start_wall
    task.cancel()
    ticks = monitor.history()[before:]
    latest = monitor.latest
    assert latest is not None
    return {
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "ticks": len(ticks),
        "tick_seconds": sum(sample.duration for sample in ticks),
        "processes": sum(usage.process_count for usage in latest.instances),
        "gpus": len(latest.gpus),
    }


def measure_aikore(count: int, interval: float, seconds: float) -> dict[str, Any]:
    """CPU % of one core of a real AiKore process with `count` running demo instances."""
    with tempfile.TemporaryDirectory() as data_dir:
        port = _free_port()
        log = (Path(data_dir) / "aikore.log").open("wb")
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aikore",
                "--no-auth",
                "--port",
                str(port),
                "--data-dir",
                data_dir,
                "--monitor-interval",
                str(interval),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[1],
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_for(lambda: _call(base, "GET", "/api/health"), "aikore to answer")
            ids = [
                _call(base, "POST", "/api/instances", {"name": f"bench{i}", "blueprint": "demo"})["id"]
                for i in range(count)
            ]
            for instance_id in ids:
                _call(base, "POST", f"/api/instances/{instance_id}/start")
            _wait_for(
                lambda: all(_call(base, "GET", f"/api/instances/{i}")["status"] == "running" for i in ids),
                "instances to run",
                timeout=300,
            )
            stats = _call(base, "GET", "/api/system/stats")
            processes = sum(entry["process_count"] for entry in stats["instances"])
            sampling = _process_cpu(server.pid, seconds)
            _call(base, "PUT", "/api/system/interval", {"interval_seconds": 60})
            idle = _process_cpu(server.pid, seconds)
            for instance_id in ids:
                _call(base, "POST", f"/api/instances/{instance_id}/stop")
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=120)
            log.close()
    return {
        "mode": "real aikore process",
        "instances": count,
        "processes": processes,
        "interval_seconds": interval,
        "wall_seconds": seconds,
        "aikore_cpu_percent_sampling": round(sampling, 2),
        "aikore_cpu_percent_at_60s_interval": round(idle, 2),
        "sampling_cost_percent_of_one_core": round(sampling - idle, 2),
    }


def _process_cpu(pid: int, seconds: float) -> float:
    proc = psutil.Process(pid)
    before, start = proc.cpu_times(), time.perf_counter()
    time.sleep(seconds)
    after, wall = proc.cpu_times(), time.perf_counter() - start
    return ((after.user + after.system) - (before.user + before.system)) / wall * 100


def _call(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        base + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(condition: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception:  # not up yet
            pass
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


@contextmanager
def _suppress_gone() -> Iterator[None]:
    try:
        yield
    except ProcessLookupError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--aikore", action="store_true", help="measure a real aikore process instead")
    args = parser.parse_args()
    measure = measure_aikore if args.aikore else measure_in_process
    print(json.dumps(measure(args.instances, args.interval, args.seconds), indent=2))


if __name__ == "__main__":
    main()
