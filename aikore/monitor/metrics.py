"""Prometheus exposition of the latest monitor sample and the proxy route counters.

A custom collector reads the current state at scrape time, registered in a per-app
`CollectorRegistry` (never prometheus-client's global one, so two apps in one test process do
not share metrics).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from aikore.monitor.sampler import Monitor, Sample

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Route snapshot as `proxy.RouteTable.snapshot()` returns it: name -> JSON-ready counters.
RouteSnapshot = Callable[[], Mapping[str, Mapping[str, Any]]]
# Instance id -> name, so series carry the name users know.
InstanceNames = Callable[[], Mapping[int, str]]

_GPU_LABELS = ["gpu", "name", "uuid"]
_INSTANCE_LABELS = ["id", "name"]


class AikoreCollector(Collector):
    """Builds every AiKore metric family from the monitor's newest sample at scrape time."""

    def __init__(
        self,
        monitor: Monitor,
        routes: RouteSnapshot | None = None,
        instance_names: InstanceNames | None = None,
    ) -> None:
        self._monitor = monitor
        self._routes = routes
        self._instance_names = instance_names

    def collect(self) -> Iterator[Metric]:
        """Yield the metric families; empty families are kept so dashboards see the series names."""
        yield from _monitor_metrics(self._monitor)
        sample = self._monitor.latest
        if sample is not None:
            yield from _system_metrics(sample)
            yield from _gpu_metrics(sample)
            names = self._instance_names() if self._instance_names else {}
            yield from _instance_metrics(sample, names)
        if self._routes is not None:
            yield from _route_metrics(self._routes())


def build_registry(
    monitor: Monitor,
    routes: RouteSnapshot | None = None,
    instance_names: InstanceNames | None = None,
) -> CollectorRegistry:
    """A registry of its own holding AiKore's collector and the standard process_* metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AikoreCollector(monitor, routes, instance_names))
    ProcessCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The Prometheus text format (version 0.0.4) of everything in the registry."""
    return generate_latest(registry)


def _gauge(name: str, doc: str, value: float | None) -> Iterator[Metric]:
    if value is not None:
        yield GaugeMetricFamily(name, doc, value=value)


def _monitor_metrics(monitor: Monitor) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "aikore_monitor_interval_seconds", "Seconds between monitor samples.", value=monitor.interval
    )
    sample = monitor.latest
    if sample is not None:
        yield GaugeMetricFamily(
            "aikore_monitor_sample_duration_seconds", "Time the newest sample took.", value=sample.duration
        )
        yield GaugeMetricFamily(
            "aikore_monitor_sample_timestamp_seconds", "Unix time of the newest sample.", value=sample.time
        )


def _system_metrics(sample: Sample) -> Iterator[Metric]:
    system = sample.system
    yield from _gauge("aikore_cpu_percent", "Machine CPU use, 0-100 over all cores.", system.cpu_percent)
    per_core = GaugeMetricFamily("aikore_cpu_core_percent", "CPU use per core, 0-100.", labels=["core"])
    for core, percent in enumerate(system.cpu_percent_per_core):
        if percent is not None:
            per_core.add_metric([str(core)], percent)
    yield per_core
    yield GaugeMetricFamily("aikore_memory_total_bytes", "Physical memory.", value=system.memory_total_bytes)
    yield GaugeMetricFamily(
        "aikore_memory_used_bytes", "Memory in use (total - available).", value=system.memory_used_bytes
    )
    yield GaugeMetricFamily("aikore_memory_available_bytes", "Memory available.", value=system.memory_available_bytes)
    yield GaugeMetricFamily("aikore_swap_total_bytes", "Swap space.", value=system.swap_total_bytes)
    yield GaugeMetricFamily("aikore_swap_used_bytes", "Swap in use.", value=system.swap_used_bytes)
    load = GaugeMetricFamily("aikore_load_average", "System load average.", labels=["period"])
    for period, value in zip(("1m", "5m", "15m"), system.load_average, strict=True):
        load.add_metric([period], value)
    yield load
    for field, doc, value in (
        ("total", "Size of the filesystem holding the data dir.", system.disk_total_bytes),
        ("used", "Used space on the filesystem holding the data dir.", system.disk_used_bytes),
        ("free", "Free space on the filesystem holding the data dir.", system.disk_free_bytes),
    ):
        disk = GaugeMetricFamily(f"aikore_disk_{field}_bytes", doc, labels=["path"])
        if value is not None:
            disk.add_metric([system.disk_path], value)
        yield disk


def _gpu_metrics(sample: Sample) -> Iterator[Metric]:
    yield GaugeMetricFamily("aikore_gpu_count", "GPUs seen by NVML.", value=len(sample.gpus))
    families = {
        "utilization_percent": GaugeMetricFamily(
            "aikore_gpu_utilization_percent", "GPU utilisation, 0-100.", labels=_GPU_LABELS
        ),
        "memory_used_bytes": GaugeMetricFamily(
            "aikore_gpu_memory_used_bytes", "GPU memory in use.", labels=_GPU_LABELS
        ),
        "memory_total_bytes": GaugeMetricFamily(
            "aikore_gpu_memory_total_bytes", "GPU memory size.", labels=_GPU_LABELS
        ),
        "temperature_celsius": GaugeMetricFamily(
            "aikore_gpu_temperature_celsius", "GPU core temperature.", labels=_GPU_LABELS
        ),
        "power_watts": GaugeMetricFamily("aikore_gpu_power_watts", "GPU power draw.", labels=_GPU_LABELS),
        "power_limit_watts": GaugeMetricFamily(
            "aikore_gpu_power_limit_watts", "GPU enforced power limit.", labels=_GPU_LABELS
        ),
    }
    up = GaugeMetricFamily("aikore_gpu_up", "1 if the GPU answered every reading.", labels=_GPU_LABELS)
    for gpu in sample.gpus:
        labels = [str(gpu.index), gpu.name or "", gpu.uuid or ""]
        up.add_metric(labels, 0 if gpu.error else 1)
        for attribute, family in families.items():
            value = getattr(gpu, attribute)
            if value is not None:
                family.add_metric(labels, value)
    yield up
    yield from families.values()


def _instance_metrics(sample: Sample, names: Mapping[int, str]) -> Iterator[Metric]:
    cpu = GaugeMetricFamily(
        "aikore_instance_cpu_percent",
        "CPU of the instance's process tree, % of one core.",
        labels=_INSTANCE_LABELS,
    )
    rss = GaugeMetricFamily(
        "aikore_instance_rss_bytes",
        "Resident memory of the instance's process tree.",
        labels=_INSTANCE_LABELS,
    )
    procs = GaugeMetricFamily("aikore_instance_processes", "Processes in the instance's tree.", labels=_INSTANCE_LABELS)
    vram = GaugeMetricFamily(
        "aikore_instance_gpu_memory_bytes",
        "GPU memory held by the instance's processes.",
        labels=[*_INSTANCE_LABELS, "gpu"],
    )
    for usage in sample.instances:
        labels = [str(usage.id), names.get(usage.id, "")]
        procs.add_metric(labels, usage.process_count)
        if usage.cpu_percent is not None:
            cpu.add_metric(labels, usage.cpu_percent)
        if usage.rss_bytes is not None:
            rss.add_metric(labels, usage.rss_bytes)
        for gpu, used in usage.gpu_memory.items():
            if used is not None:
                vram.add_metric([*labels, str(gpu)], used)
    yield from (cpu, rss, procs, vram)


def _route_metrics(snapshot: Mapping[str, Mapping[str, Any]]) -> Iterator[Metric]:
    requests = CounterMetricFamily("aikore_route_requests", "Requests proxied.", labels=["route"])
    received = CounterMetricFamily(
        "aikore_route_received_bytes", "Bytes from clients to the instance.", labels=["route"]
    )
    sent = CounterMetricFamily("aikore_route_sent_bytes", "Bytes from the instance to clients.", labels=["route"])
    sockets = GaugeMetricFamily("aikore_route_open_websockets", "Websockets open now.", labels=["route"])
    activity = GaugeMetricFamily(
        "aikore_route_last_activity_timestamp_seconds",
        "Unix time of the last proxied traffic.",
        labels=["route"],
    )
    for name, route in sorted(snapshot.items()):
        requests.add_metric([name], route.get("requests", 0))
        received.add_metric([name], route.get("bytes_in", 0))
        sent.add_metric([name], route.get("bytes_out", 0))
        sockets.add_metric([name], route.get("open_websockets", 0))
        if route.get("last_activity") is not None:
            activity.add_metric([name], route["last_activity"])
    yield from (requests, received, sent, sockets, activity)
