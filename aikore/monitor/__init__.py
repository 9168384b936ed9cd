"""The monitor: system, GPU and per-instance usage, its history, and the /metrics registry.

``setup_monitor(app, ...)`` opens the sampler (NVML included) for the app's lifetime. Which
processes belong to which instance comes from the caller (the supervisor's pid map); instance
names, for metric labels, follow the supervisor's instance events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from aikore.config import Settings
from aikore.events import EVENTS
from aikore.monitor import metrics
from aikore.monitor.gpu import Gpus
from aikore.monitor.sampler import InstancePids, Monitor
from aikore.supervisor.events import InstanceChanged, InstanceDeleted, InstanceRenamed

log = logging.getLogger(__name__)

MONITOR = web.AppKey("monitor", Monitor)
# /metrics: a registry of AiKore's own, never prometheus-client's process-global one.
METRICS_REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)

RouteSnapshot = Callable[[], Mapping[str, Mapping[str, Any]]]


class InstanceNames:
    """Instance id -> name, followed from instance events, for metric labels."""

    def __init__(self) -> None:
        self._names: dict[int, str] = {}

    def names(self) -> dict[int, str]:
        return dict(self._names)

    def on_event(self, event: object) -> None:
        if isinstance(event, InstanceChanged | InstanceRenamed):
            self._names[event.instance.id] = event.instance.name
        elif isinstance(event, InstanceDeleted):
            self._names.pop(event.instance.id, None)


def setup_monitor(
    app: web.Application, settings: Settings, *, instance_pids: InstancePids, route_snapshot: RouteSnapshot
) -> None:
    """Sample every ``settings.monitor_interval`` while the app runs; end live streams on shutdown."""
    names = InstanceNames()
    app[EVENTS].listen(names.on_event)

    async def monitor_ctx(app: web.Application) -> AsyncIterator[None]:
        # nvmlInit can take a while on machines with many GPUs; keep the loop free meanwhile.
        gpus = await asyncio.to_thread(Gpus.open)
        if gpus.reason:
            log.info("GPU monitoring off: %s", gpus.reason)
        monitor = Monitor(
            data_dir=settings.data_dir, instance_pids=instance_pids, gpus=gpus, interval=settings.monitor_interval
        )
        app[MONITOR] = monitor
        app[METRICS_REGISTRY] = metrics.build_registry(monitor, route_snapshot, names.names)
        task = asyncio.create_task(monitor.run(), name="aikore-monitor")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        monitor.end_streams()
        await asyncio.to_thread(monitor.close)

    async def end_streams(app: web.Application) -> None:
        # Shutdown runs before aiohttp waits for open requests; ending streams here keeps it quick.
        monitor = app.get(MONITOR)
        if monitor is not None:
            monitor.end_streams()

    app.cleanup_ctx.append(monitor_ctx)
    app.on_shutdown.append(end_streams)
