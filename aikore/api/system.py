"""The machine's resources: latest stats, history, sampling interval, live stream, and /metrics.

Views only: the sampler and the metrics registry belong to ``aikore.monitor``.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from aiohttp import web

from aikore.api.common import json_response, read_json_object, reject_unknown
from aikore.errors import AikoreError
from aikore.monitor import METRICS_REGISTRY, MONITOR, metrics
from aikore.monitor.sampler import MAX_INTERVAL, MIN_INTERVAL, Monitor

log = logging.getLogger(__name__)

_MAX_HISTORY_LIMIT = 100_000


def _monitor(request: web.Request) -> Monitor:
    return request.app[MONITOR]


async def get_stats(request: web.Request) -> web.Response:
    """The newest sample; taken on the spot if the first tick has not happened yet."""
    monitor = _monitor(request)
    sample = monitor.latest or await monitor.sample_once()
    return json_response(sample.to_json())


async def get_history(request: web.Request) -> web.Response:
    """Samples oldest first, optionally only those after `since` and at most the newest `limit`."""
    monitor = _monitor(request)
    since = _query_number(request, "since", float)
    limit = _query_number(request, "limit", int)
    if limit is not None and not 1 <= limit <= _MAX_HISTORY_LIMIT:
        raise AikoreError("invalid_field", f"limit: must be 1-{_MAX_HISTORY_LIMIT}, got {limit}", 400, field="limit")
    samples = monitor.history(since)
    if limit is not None:
        samples = samples[-limit:]
    return json_response(
        {
            "interval_seconds": monitor.interval,
            "history_seconds": monitor.history_seconds,
            "capacity": monitor.capacity,
            "samples": [sample.to_json() for sample in samples],
        }
    )


def _query_number(request: web.Request, name: str, kind: type[int] | type[float]) -> Any:
    text = request.query.get(name)
    if text is None:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise AikoreError("invalid_field", f"{name}: must be a {kind.__name__}, got {text[:40]!r}", 400) from None
    if not math.isfinite(value):
        raise AikoreError("invalid_field", f"{name}: must be a finite number", 400)
    return value


def _interval_json(monitor: Monitor) -> dict[str, Any]:
    return {
        "interval_seconds": monitor.interval,
        "min_seconds": MIN_INTERVAL,
        "max_seconds": MAX_INTERVAL,
        "history_seconds": monitor.history_seconds,
        "capacity": monitor.capacity,
    }


async def get_interval(request: web.Request) -> web.Response:
    """The sampling interval and its bounds."""
    return json_response(_interval_json(_monitor(request)))


async def put_interval(request: web.Request) -> web.Response:
    """Change the sampling interval now (not persisted: a restart uses --monitor-interval)."""
    data = await read_json_object(request)
    reject_unknown(data, {"interval_seconds"})
    value = data.get("interval_seconds")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AikoreError(
            "invalid_field", "interval_seconds: required, a number of seconds", 400, field="interval_seconds",
        )
    if not MIN_INTERVAL <= value <= MAX_INTERVAL:
        raise AikoreError(
            "invalid_field",
            f"interval_seconds: must be {MIN_INTERVAL}-{MAX_INTERVAL}, got {value}",
            400,
            field="interval_seconds",
        )
    monitor = _monitor(request)
    monitor.set_interval(float(value))
    return json_response(_interval_json(monitor))


async def stream_stats(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the newest sample at once, then each new one as `event: stats`."""
    monitor = _monitor(request)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    samples = monitor.stream()
    try:
        if monitor.latest is not None:
            await response.write(_sse(monitor.latest.to_json()))
        async for sample in samples:
            await response.write(_sse(sample.to_json()))
    except ConnectionResetError:
        pass  # the browser went away
    finally:
        await samples.aclose()
    return response


def _sse(data: dict[str, Any]) -> bytes:
    return f"event: stats\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def get_metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition of system, GPU, instance and proxy route metrics."""
    body = metrics.render(request.app[METRICS_REGISTRY])
    return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})


def setup(app: web.Application) -> None:
    """Register the routes, the instance `usage` field, and ending live streams on shutdown."""
    app.router.add_get("/api/system/stats", get_stats)
    app.router.add_get("/api/system/history", get_history)
    app.router.add_get("/api/system/interval", get_interval)
    app.router.add_put("/api/system/interval", put_interval)
    app.router.add_get("/api/system/stream", stream_stats)
    app.router.add_get("/metrics", get_metrics)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_NUMBER = {"type": "number"}
_BYTES = {"type": "integer", "minimum": 0}
_N_NUMBER = {"type": ["number", "null"]}
_N_BYTES = {"type": ["integer", "null"], "minimum": 0}
_ERROR = {"description": "Invalid input", "content": {"application/json": {"schema": _ref("Error")}}}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": sorted(properties), "properties": properties}


OPENAPI_SCHEMAS: dict[str, Any] = {
    "SystemUsage": _object(
        {
            "cpu": _object(
                {
                    "percent": {**_N_NUMBER, "description": "Whole machine, 0-100; null on the first tick"},
                    "per_core": {"type": "array", "items": _N_NUMBER},
                    "count": {"type": "integer"},
                }
            ),
            "memory": _object(
                {
                    "total_bytes": _BYTES,
                    "used_bytes": {**_BYTES, "description": "total - available"},
                    "available_bytes": _BYTES,
                    "percent": _NUMBER,
                }
            ),
            "swap": _object({"total_bytes": _BYTES, "used_bytes": _BYTES, "percent": _NUMBER}),
            "load_average": {"type": "array", "items": _NUMBER, "minItems": 3, "maxItems": 3},
            "disk": _object(
                {
                    "path": {"type": "string", "description": "The data dir"},
                    "total_bytes": _N_BYTES,
                    "used_bytes": _N_BYTES,
                    "free_bytes": _N_BYTES,
                    "percent": _N_NUMBER,
                }
            ),
        }
    ),
    "GpuUsage": _object(
        {
            "index": {"type": "integer", "description": "NVML index (PCI bus order, as CUDA_DEVICE_ORDER=PCI_BUS_ID)"},
            "name": {"type": ["string", "null"]},
            "uuid": {"type": ["string", "null"]},
            "utilization_percent": _N_NUMBER,
            "memory_used_bytes": _N_BYTES,
            "memory_total_bytes": _N_BYTES,
            "temperature_celsius": _N_NUMBER,
            "power_watts": _N_NUMBER,
            "power_limit_watts": _N_NUMBER,
            "process_count": {"type": "integer"},
            "error": {"type": ["string", "null"], "description": "Why readings are missing, if the GPU failed"},
        }
    ),
    "InstanceUsage": _object(
        {
            "id": {"type": "integer"},
            "pid": {"type": "integer", "description": "Root of the process tree"},
            "running": {"type": "boolean"},
            "process_count": {"type": "integer"},
            "cpu_percent": {**_N_NUMBER, "description": "Summed over the tree, % of one core"},
            "rss_bytes": _N_BYTES,
            "gpu_memory_bytes": {**_N_BYTES, "description": "VRAM over all GPUs; null without GPU monitoring"},
            "gpus": {
                "type": "array",
                "items": _object({"index": {"type": "integer"}, "memory_bytes": _N_BYTES}),
            },
        }
    ),
    "SystemStats": _object(
        {
            "time": {**_NUMBER, "description": "Unix time of the sample"},
            "interval_seconds": _NUMBER,
            "sample_seconds": {**_NUMBER, "description": "How long taking the sample took"},
            "system": _ref("SystemUsage"),
            "gpus": {"type": "array", "items": _ref("GpuUsage")},
            "gpu_reason": {"type": ["string", "null"], "description": "Why there are no GPUs, if so"},
            "instances": {"type": "array", "items": _ref("InstanceUsage")},
            "aikore": _object({"pid": {"type": "integer"}, "cpu_percent": _NUMBER, "rss_bytes": _BYTES}),
        }
    ),
    "SystemHistory": _object(
        {
            "interval_seconds": _NUMBER,
            "history_seconds": _NUMBER,
            "capacity": {"type": "integer", "description": "Samples kept at this interval"},
            "samples": {"type": "array", "items": _ref("SystemStats")},
        }
    ),
    "MonitorInterval": _object(
        {
            "interval_seconds": _NUMBER,
            "min_seconds": _NUMBER,
            "max_seconds": _NUMBER,
            "history_seconds": _NUMBER,
            "capacity": {"type": "integer"},
        }
    ),
    "MonitorIntervalChange": {
        "type": "object",
        "required": ["interval_seconds"],
        "additionalProperties": False,
        "properties": {"interval_seconds": {"type": "number", "minimum": MIN_INTERVAL, "maximum": MAX_INTERVAL}},
    },
}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


OPENAPI_PATHS: dict[str, Any] = {
    "/api/system/stats": {
        "get": {
            "summary": "Latest system, GPU and per-instance usage sample",
            "responses": {"200": _json("The newest sample", _ref("SystemStats"))},
        }
    },
    "/api/system/history": {
        "get": {
            "summary": "Recent samples, oldest first (the last 15 minutes by default)",
            "parameters": [
                {
                    "name": "since",
                    "in": "query",
                    "required": False,
                    "description": "Only samples taken after this Unix time",
                    "schema": {"type": "number"},
                },
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "description": "At most this many of the newest samples",
                    "schema": {"type": "integer", "minimum": 1, "maximum": _MAX_HISTORY_LIMIT},
                },
            ],
            "responses": {"200": _json("Samples", _ref("SystemHistory")), "400": _ERROR},
        }
    },
    "/api/system/interval": {
        "get": {
            "summary": "Sampling interval and its bounds",
            "responses": {"200": _json("Interval", _ref("MonitorInterval"))},
        },
        "put": {
            "summary": "Change the sampling interval now (until restart)",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("MonitorIntervalChange")}},
            },
            "responses": {"200": _json("The new interval", _ref("MonitorInterval")), "400": _ERROR},
        },
    },
    "/api/system/stream": {
        "get": {
            "summary": "Live samples as server-sent events (`event: stats`, data = SystemStats JSON)",
            "responses": {
                "200": {
                    "description": "An endless event stream",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                }
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics: system, GPU, instance and proxy route figures",
            "responses": {
                "200": {
                    "description": "Prometheus text exposition format 0.0.4",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    },
}
