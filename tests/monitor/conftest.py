"""A fake `pynvml` module: the one thing here that cannot be real on a machine without a GPU."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

NOT_SUPPORTED = 3
GPU_IS_LOST = 15
DRIVER_NOT_LOADED = 9
_MESSAGES = {
    NOT_SUPPORTED: "Not Supported",
    GPU_IS_LOST: "GPU is lost",
    DRIVER_NOT_LOADED: "Driver Not Loaded",
}


class FakeNVMLError(Exception):
    """Shaped like pynvml.NVMLError: the NVML return code in `.value`."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return _MESSAGES.get(self.value, f"NVML error {self.value}")


@dataclass
class FakeGpu:
    name: str | bytes = "NVIDIA Fake 4090"
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    utilization: int = 37
    memory_used: int = 3 * 2**30
    memory_total: int = 24 * 2**30
    temperature: int = 61
    power_mw: int | None = 215_500
    power_limit_mw: int | None = 450_000
    compute: dict[int, int | None] = field(default_factory=dict)
    graphics: dict[int, int | None] = field(default_factory=dict)
    lost: bool = False


class FakeNvml:
    """The subset of the pynvml API that aikore.monitor.gpu calls, answering from `gpus`."""

    NVML_TEMPERATURE_GPU = 0
    NVMLError = FakeNVMLError

    def __init__(self) -> None:
        self.gpus: list[FakeGpu] = []
        self.init_error: int | None = None
        self.init_calls = 0
        self.shutdown_calls = 0

    def add_gpu(self, **fields: Any) -> FakeGpu:
        """Plug in one more GPU with the given readings; returns it for later changes."""
        gpu = FakeGpu(uuid=f"GPU-fake-{len(self.gpus)}", **fields)
        self.gpus.append(gpu)
        return gpu

    def load(self) -> FakeNvml:
        """The loader `Gpus.open` takes in place of importing pynvml."""
        return self

    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.init_error is not None:
            raise FakeNVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self.shutdown_calls += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def _gpu(self, handle: int) -> FakeGpu:
        gpu = self.gpus[handle]
        if gpu.lost:
            raise FakeNVMLError(GPU_IS_LOST)
        return gpu

    def nvmlDeviceGetName(self, handle: int) -> str | bytes:
        return self._gpu(handle).name

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return self._gpu(handle).uuid

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
        return SimpleNamespace(gpu=self._gpu(handle).utilization, memory=10)

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> Any:
        gpu = self._gpu(handle)
        return SimpleNamespace(used=gpu.memory_used, total=gpu.memory_total, free=gpu.memory_total - gpu.memory_used)

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        assert sensor == self.NVML_TEMPERATURE_GPU
        return self._gpu(handle).temperature

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return _supported(self._gpu(handle).power_mw)

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: int) -> int:
        return _supported(self._gpu(handle).power_limit_mw)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[Any]:
        return _processes(self._gpu(handle).compute)

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: int) -> list[Any]:
        return _processes(self._gpu(handle).graphics)


def _supported(value: int | None) -> int:
    if value is None:
        raise FakeNVMLError(NOT_SUPPORTED)
    return value


def _processes(table: dict[int, int | None]) -> list[Any]:
    return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in table.items()]


@pytest.fixture
def fake_nvml() -> FakeNvml:
    """A fake NVML with no GPU yet; tests append FakeGpu entries."""
    return FakeNvml()
