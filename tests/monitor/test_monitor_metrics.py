"""/metrics rendering, read back with prometheus-client's own parser."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from aikore.monitor import metrics
from aikore.monitor.gpu import Gpus
from aikore.monitor.sampler import Monitor, Sample
from proxy.table import RouteTable
from tests.helpers import wait_until

MIB = 2**20


def _parse(payload: bytes) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Sample name -> {sorted label pairs: value}."""
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(payload.decode()):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def _single(found: dict[str, dict[tuple[tuple[str, str], ...], float]], name: str) -> float:
    (value,) = found[name].values()
    return value


def _sample_with_cpu_figures(monitor: Monitor) -> Sample:
    """CPU percents need a clock tick (10 ms) on every core between samples; poll, not sleep."""

    def with_cpu_figures() -> Sample | None:
        sample = monitor.sample_now()
        return None if None in sample.system.cpu_percent_per_core else sample

    return wait_until(with_cpu_figures, what="CPU percents on every core")


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def routes() -> RouteTable:
    table = RouteTable()
    table.set("comfy", port=40001, state="running")
    table.set("idle", port=None, state="stopped")
    comfy = table.get("comfy")
    assert comfy is not None
    comfy.requests, comfy.bytes_in, comfy.bytes_out, comfy.open_websockets = 12, 3000, 4_000_000, 2
    comfy.last_activity = 1_700_000_000.5
    return table


def test_metrics_cover_system_gpu_instance_and_routes(
    tmp_path: Path, child: subprocess.Popen[bytes], fake_nvml, routes: RouteTable
) -> None:
    fake_nvml.add_gpu(name="NVIDIA Fake", compute={child.pid: 512 * MIB})
    fake_nvml.add_gpu(power_mw=None)
    monitor = Monitor(
        data_dir=tmp_path, instance_pids=lambda: {4: child.pid}, gpus=Gpus.open(fake_nvml.load), interval=2.0
    )
    sample = _sample_with_cpu_figures(monitor)
    registry = metrics.build_registry(monitor, routes.snapshot, lambda: {4: "comfy"})
    found = _parse(metrics.render(registry))

    assert _single(found, "aikore_monitor_interval_seconds") == 2.0
    assert _single(found, "aikore_memory_total_bytes") == sample.system.memory_total_bytes
    assert len(found["aikore_cpu_core_percent"]) == len(sample.system.cpu_percent_per_core)
    assert found["aikore_disk_total_bytes"] == {(("path", str(tmp_path)),): sample.system.disk_total_bytes}
    assert set(found["aikore_load_average"]) == {(("period", p),) for p in ("1m", "5m", "15m")}

    gpu0 = (("gpu", "0"), ("name", "NVIDIA Fake"), ("uuid", "GPU-fake-0"))
    assert _single(found, "aikore_gpu_count") == 2
    assert found["aikore_gpu_utilization_percent"][gpu0] == 37.0
    assert found["aikore_gpu_power_watts"] == {gpu0: 215.5}  # GPU 1 has no power reading: no series
    assert found["aikore_gpu_up"][gpu0] == 1.0

    instance = (("id", "4"), ("name", "comfy"))
    assert found["aikore_instance_processes"] == {instance: 1.0}
    assert found["aikore_instance_rss_bytes"][instance] > 0
    assert found["aikore_instance_gpu_memory_bytes"] == {
        (("gpu", "0"), *instance): 512 * MIB,
        (("gpu", "1"), *instance): 0.0,
    }

    comfy, idle = (("route", "comfy"),), (("route", "idle"),)
    assert found["aikore_route_requests_total"] == {comfy: 12.0, idle: 0.0}
    assert found["aikore_route_received_bytes_total"][comfy] == 3000
    assert found["aikore_route_sent_bytes_total"][comfy] == 4_000_000
    assert found["aikore_route_open_websockets"][comfy] == 2
    assert found["aikore_route_last_activity_timestamp_seconds"] == {comfy: 1_700_000_000.5}


def test_lost_gpu_is_down_in_metrics(tmp_path: Path, fake_nvml) -> None:
    fake_nvml.add_gpu()
    monitor = Monitor(data_dir=tmp_path, instance_pids=dict, gpus=Gpus.open(fake_nvml.load))
    fake_nvml.gpus[0].lost = True
    monitor.sample_now()
    found = _parse(metrics.render(metrics.build_registry(monitor)))
    assert list(found["aikore_gpu_up"].values()) == [0.0]
    assert "aikore_gpu_utilization_percent" not in found


def test_before_the_first_sample_only_the_interval_is_exported(tmp_path: Path) -> None:
    monitor = Monitor(data_dir=tmp_path, instance_pids=dict, gpus=Gpus.disabled("none"))
    found = _parse(metrics.render(metrics.build_registry(monitor)))
    assert _single(found, "aikore_monitor_interval_seconds") == 1.0
    assert not any(name.startswith(("aikore_cpu", "aikore_gpu", "aikore_instance")) for name in found)


def test_no_gpu_exports_zero_gpus_and_no_gpu_series(tmp_path: Path) -> None:
    monitor = Monitor(data_dir=tmp_path, instance_pids=dict, gpus=Gpus.disabled("none"))
    monitor.sample_now()
    found = _parse(metrics.render(metrics.build_registry(monitor)))
    assert _single(found, "aikore_gpu_count") == 0
    assert "aikore_gpu_memory_used_bytes" not in found


def test_registry_is_private_to_each_app(tmp_path: Path) -> None:
    first = Monitor(data_dir=tmp_path, instance_pids=dict, gpus=Gpus.disabled("none"), interval=1.0)
    second = Monitor(data_dir=tmp_path, instance_pids=dict, gpus=Gpus.disabled("none"), interval=5.0)
    one, two = metrics.build_registry(first), metrics.build_registry(second)
    assert _single(_parse(metrics.render(one)), "aikore_monitor_interval_seconds") == 1.0
    assert _single(_parse(metrics.render(two)), "aikore_monitor_interval_seconds") == 5.0
    assert REGISTRY.get_sample_value("aikore_monitor_interval_seconds") is None


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="process_* metrics are Linux-only")
def test_process_metrics_describe_aikore_itself(tmp_path: Path) -> None:
    monitor = Monitor(data_dir=tmp_path, instance_pids=dict, gpus=Gpus.disabled("none"))
    found = _parse(metrics.render(metrics.build_registry(monitor)))
    assert _single(found, "process_resident_memory_bytes") > 0
