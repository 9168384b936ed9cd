"""GPU readings through NVML, behind a seam that takes the `pynvml` module as an argument.

The module is imported lazily (`load_pynvml`) so AiKore starts on machines without the NVIDIA
driver; tests hand `Gpus.open` a fake module object with the same functions and error class.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

# NVML answers these for a reading the device or driver does not offer (power on many consumer
# cards, process lists on old drivers): the value is null, the GPU itself is fine.
_UNSUPPORTED_CODES = frozenset({3, 13})  # NVML_ERROR_NOT_SUPPORTED, NVML_ERROR_FUNCTION_NOT_FOUND


@dataclass(frozen=True, slots=True)
class GpuSample:
    """One GPU at one tick; None where NVML gave no value."""

    index: int
    name: str | None
    uuid: str | None
    utilization_percent: float | None = None
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    temperature_celsius: float | None = None
    power_watts: float | None = None
    power_limit_watts: float | None = None
    error: str | None = None
    # pid -> GPU memory bytes held (None when the driver cannot tell, e.g. some vGPU setups)
    process_memory: dict[int, int | None] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The public JSON shape (without the raw process list)."""
        return {
            "index": self.index,
            "name": self.name,
            "uuid": self.uuid,
            "utilization_percent": self.utilization_percent,
            "memory_used_bytes": self.memory_used_bytes,
            "memory_total_bytes": self.memory_total_bytes,
            "temperature_celsius": self.temperature_celsius,
            "power_watts": self.power_watts,
            "power_limit_watts": self.power_limit_watts,
            "process_count": len(self.process_memory),
            "error": self.error,
        }


def load_pynvml() -> ModuleType:
    """Import the real NVML binding (nvidia-ml-py); raises ImportError when it is not installed."""
    return importlib.import_module("pynvml")


@dataclass(slots=True)
class _Device:
    index: int
    handle: Any
    name: str | None
    uuid: str | None


class Gpus:
    """NVML initialised once; `sample()` is one pass over every GPU; `close()` shuts NVML down."""

    def __init__(self, nvml: Any | None, devices: list[_Device], reason: str | None, listed: bool = False) -> None:
        self._nvml = nvml
        self._devices = devices
        self.reason = reason
        # NVML answered the count (none, or these devices): GPU IDs can be checked against it.
        self._listed = listed or nvml is not None

    @classmethod
    def open(cls, load: Callable[[], Any] | None = None) -> Gpus:
        """Initialise NVML; never raises: without library, driver or GPU, `reason` says why.

        `load` returns the pynvml module (or a stand-in); by default `load_pynvml`, looked up at
        call time so tests of the whole app can replace it.
        """
        try:
            nvml = (load or load_pynvml)()
        except ImportError as exc:
            return cls(None, [], f"NVML library not installed: {exc}")
        try:
            nvml.nvmlInit()
        except Exception as exc:  # NVMLError, or OSError from a broken driver install
            return cls(None, [], f"NVML unavailable: {exc}")
        try:
            devices = [_open_device(nvml, index) for index in range(nvml.nvmlDeviceGetCount())]
        except Exception as exc:
            _shutdown(nvml)
            return cls(None, [], f"NVML could not list GPUs: {exc}")
        if not devices:
            _shutdown(nvml)
            return cls(None, [], "no GPU found by NVML", listed=True)
        return cls(nvml, devices, None)

    @classmethod
    def disabled(cls, reason: str) -> Gpus:
        """A reader that reports no GPU, e.g. when monitoring of GPUs is switched off."""
        return cls(None, [], reason)

    def detected(self) -> dict[int, str | None] | None:
        """The GPUs NVML listed, index -> name; None when NVML did not answer (nothing to check against)."""
        if not self._listed:
            return None
        return {device.index: device.name for device in self._devices}

    def sample(self) -> list[GpuSample]:
        """Read every GPU once; a GPU that fails is reported in its own entry."""
        if self._nvml is None:
            return []
        return [_read_device(self._nvml, device) for device in self._devices]

    def close(self) -> None:
        """Shut NVML down; safe to call twice."""
        if self._nvml is not None:
            _shutdown(self._nvml)
            self._nvml = None


def missing_gpus(gpu_ids: str, detected: dict[int, str | None]) -> list[int]:
    """The indexes in ``gpu_ids`` ("0,2") that are not among the ``detected`` GPUs."""
    return [int(part) for part in gpu_ids.split(",") if part.strip() and int(part) not in detected]


def describe_gpus(detected: dict[int, str | None]) -> str:
    """What the machine has, for messages: "it has GPU 0 (NVIDIA …) and GPU 1 (…)", or that it has none."""
    if not detected:
        return "NVML finds no GPU"
    names = [f"GPU {index}" + (f" ({name})" if name else "") for index, name in sorted(detected.items())]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"
    return f"it has {listed}"


def _open_device(nvml: Any, index: int) -> _Device:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    return _Device(
        index=index,
        handle=handle,
        name=_text(_optional(nvml, nvml.nvmlDeviceGetName, handle)),
        uuid=_text(_optional(nvml, nvml.nvmlDeviceGetUUID, handle)),
    )


class _Reading:
    """Collects the values of one GPU, keeping the first real error instead of raising it."""

    def __init__(self, nvml: Any) -> None:
        self._nvml = nvml
        self.error: str | None = None

    def get(self, func: Callable[..., Any], *args: Any) -> Any:
        try:
            return func(*args)
        except self._nvml.NVMLError as exc:
            if getattr(exc, "value", None) not in _UNSUPPORTED_CODES and self.error is None:
                self.error = f"{func.__name__}: {exc}"
            return None


def _read_device(nvml: Any, device: _Device) -> GpuSample:
    reading = _Reading(nvml)
    handle = device.handle
    utilization = reading.get(nvml.nvmlDeviceGetUtilizationRates, handle)
    memory = reading.get(nvml.nvmlDeviceGetMemoryInfo, handle)
    temperature = reading.get(nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU)
    power = reading.get(nvml.nvmlDeviceGetPowerUsage, handle)
    limit = reading.get(nvml.nvmlDeviceGetEnforcedPowerLimit, handle)
    processes: dict[int, int | None] = {}
    for lister in (nvml.nvmlDeviceGetComputeRunningProcesses, nvml.nvmlDeviceGetGraphicsRunningProcesses):
        for proc in reading.get(lister, handle) or ():
            processes[proc.pid] = _max_known(processes.get(proc.pid), proc.usedGpuMemory)
    return GpuSample(
        index=device.index,
        name=device.name,
        uuid=device.uuid,
        utilization_percent=None if utilization is None else float(utilization.gpu),
        memory_used_bytes=None if memory is None else int(memory.used),
        memory_total_bytes=None if memory is None else int(memory.total),
        temperature_celsius=None if temperature is None else float(temperature),
        power_watts=_milliwatts(power),
        power_limit_watts=_milliwatts(limit),
        error=reading.error,
        process_memory=processes,
    )


def _max_known(a: int | None, b: int | None) -> int | None:
    # A process with both a compute and a graphics context is listed twice with the same total.
    if a is None or b is None:
        return a if b is None else b
    return max(a, b)


def _optional(nvml: Any, func: Callable[..., Any], *args: Any) -> Any:
    try:
        return func(*args)
    except nvml.NVMLError:
        return None


def _text(value: str | bytes | None) -> str | None:
    # Older nvidia-ml-py releases return bytes, newer ones str.
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _milliwatts(value: int | None) -> float | None:
    return None if value is None else value / 1000.0


def _shutdown(nvml: Any) -> None:
    try:
        nvml.nvmlShutdown()
    except Exception:  # shutting down a half-initialised NVML must not mask the original reason
        pass
