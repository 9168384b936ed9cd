"""A stand-in `pynvml` for the dashboard tests: two GPUs whose load moves, on a machine without one.

Put first on PYTHONPATH of a real `aikore` process, it is what `aikore.monitor.gpu` imports; NVML itself
cannot exist here. Readings follow the clock so the sparklines have a shape to draw.
"""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

NVML_TEMPERATURE_GPU = 0
_GIB = 2**30
_GPUS = (
    {"name": "NVIDIA GeForce RTX 4090", "total": 24 * _GIB, "base": 0.55, "limit": 450_000},
    {"name": "NVIDIA RTX A6000", "total": 48 * _GIB, "base": 0.2, "limit": 300_000},
)


class NVMLError(Exception):
    value = 999


def nvmlInit() -> None:
    pass


def nvmlShutdown() -> None:
    pass


def nvmlDeviceGetCount() -> int:
    return len(_GPUS)


def nvmlDeviceGetHandleByIndex(index: int) -> int:
    return index


def _load(handle: int) -> float:
    base = _GPUS[handle]["base"]
    return max(0.0, min(1.0, base + 0.3 * math.sin(time.time() / 2 + 2 * handle)))


def nvmlDeviceGetName(handle: int) -> str:
    return str(_GPUS[handle]["name"])


def nvmlDeviceGetUUID(handle: int) -> str:
    return f"GPU-dashboard-test-{handle}"


def nvmlDeviceGetUtilizationRates(handle: int) -> SimpleNamespace:
    return SimpleNamespace(gpu=round(100 * _load(handle)), memory=10)


def nvmlDeviceGetMemoryInfo(handle: int) -> SimpleNamespace:
    total = int(_GPUS[handle]["total"])
    used = int(total * (0.15 + 0.5 * _load(handle)))
    return SimpleNamespace(used=used, total=total, free=total - used)


def nvmlDeviceGetTemperature(handle: int, sensor: int) -> int:
    return round(45 + 30 * _load(handle))


def nvmlDeviceGetPowerUsage(handle: int) -> int:
    return round(int(_GPUS[handle]["limit"]) * (0.2 + 0.7 * _load(handle)))


def nvmlDeviceGetEnforcedPowerLimit(handle: int) -> int:
    return int(_GPUS[handle]["limit"])


def nvmlDeviceGetComputeRunningProcesses(handle: int) -> list[SimpleNamespace]:
    return []


def nvmlDeviceGetGraphicsRunningProcesses(handle: int) -> list[SimpleNamespace]:
    return []
