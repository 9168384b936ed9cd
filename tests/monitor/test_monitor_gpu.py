"""The NVML seam: real pynvml for the no-GPU path, a fake module object for everything a GPU does."""

from __future__ import annotations

import pytest

from aikore.monitor.gpu import Gpus, load_pynvml


def _no_library() -> object:
    raise ImportError("No module named 'pynvml'")


def test_missing_library_gives_no_gpus_and_a_reason() -> None:
    gpus = Gpus.open(_no_library)
    assert gpus.sample() == []
    assert gpus.reason is not None and "not installed" in gpus.reason


def test_real_pynvml_without_driver_or_gpu_never_raises() -> None:
    pynvml = load_pynvml()
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        has_gpu = False
    else:
        has_gpu = pynvml.nvmlDeviceGetCount() > 0
        pynvml.nvmlShutdown()
    gpus = Gpus.open()
    try:
        if has_gpu:
            assert gpus.reason is None and gpus.sample()
        else:
            assert gpus.sample() == [] and gpus.reason
    finally:
        gpus.close()


def test_driver_not_loaded_gives_reason_from_nvml(fake_nvml) -> None:
    fake_nvml.init_error = 9
    gpus = Gpus.open(fake_nvml.load)
    assert gpus.sample() == []
    assert gpus.reason == "NVML unavailable: Driver Not Loaded"


def test_zero_devices_shuts_nvml_down_and_says_so(fake_nvml) -> None:
    gpus = Gpus.open(fake_nvml.load)
    assert gpus.sample() == [] and gpus.reason == "no GPU found by NVML"
    assert fake_nvml.shutdown_calls == 1


def test_readings_are_converted_to_plain_units(fake_nvml) -> None:
    fake_nvml.add_gpu(name=b"NVIDIA GeForce RTX 4090")
    fake_nvml.add_gpu(name="NVIDIA A100", utilization=99, temperature=70, power_mw=300_000)
    gpus = Gpus.open(fake_nvml.load)
    first, second = gpus.sample()
    assert first.to_json() == {
        "index": 0,
        "name": "NVIDIA GeForce RTX 4090",
        "uuid": "GPU-fake-0",
        "utilization_percent": 37.0,
        "memory_used_bytes": 3 * 2**30,
        "memory_total_bytes": 24 * 2**30,
        "temperature_celsius": 61.0,
        "power_watts": 215.5,
        "power_limit_watts": 450.0,
        "process_count": 0,
        "error": None,
    }
    assert (second.index, second.name, second.utilization_percent, second.power_watts) == (
        1,
        "NVIDIA A100",
        99.0,
        300.0,
    )
    assert gpus.reason is None


def test_unsupported_power_reading_is_null_not_an_error(fake_nvml) -> None:
    fake_nvml.add_gpu(power_mw=None, power_limit_mw=None)
    (gpu,) = Gpus.open(fake_nvml.load).sample()
    assert gpu.power_watts is None and gpu.power_limit_watts is None
    assert gpu.error is None and gpu.memory_used_bytes == 3 * 2**30


def test_gpu_lost_mid_run_is_reported_in_its_entry_and_others_keep_reading(fake_nvml) -> None:
    fake_nvml.add_gpu()
    broken = fake_nvml.add_gpu()
    gpus = Gpus.open(fake_nvml.load)
    broken.lost = True
    healthy, lost = gpus.sample()
    assert healthy.error is None and healthy.utilization_percent == 37.0
    assert lost.error is not None and "GPU is lost" in lost.error
    assert lost.utilization_percent is None and lost.memory_used_bytes is None
    assert lost.uuid == "GPU-fake-1"  # read at start, still identifies the card
    broken.lost = False
    assert gpus.sample()[1].error is None


def test_process_lists_merge_compute_and_graphics_without_double_counting(fake_nvml) -> None:
    fake_nvml.add_gpu(compute={100: 2**30, 101: None}, graphics={100: 2**30, 102: 5 * 2**20})
    (gpu,) = Gpus.open(fake_nvml.load).sample()
    assert gpu.process_memory == {100: 2**30, 101: None, 102: 5 * 2**20}
    assert gpu.to_json()["process_count"] == 3


def test_nvml_is_initialised_once_and_shut_down_once(fake_nvml) -> None:
    fake_nvml.add_gpu()
    gpus = Gpus.open(fake_nvml.load)
    for _ in range(3):
        gpus.sample()
    gpus.close()
    gpus.close()
    assert (fake_nvml.init_calls, fake_nvml.shutdown_calls) == (1, 1)
    assert gpus.sample() == []


@pytest.mark.parametrize("reason", ["switched off"])
def test_disabled_reader_reports_its_reason(reason: str) -> None:
    gpus = Gpus.disabled(reason)
    assert gpus.sample() == [] and gpus.reason == reason
