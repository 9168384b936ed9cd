"""Print monitor samples as JSON using the real pynvml: the check to run on a GPU machine.

    python bench/nvml_probe.py                  # one sample, every GPU
    python bench/nvml_probe.py --hold-vram 256  # also start a child that allocates 256 MiB through
                                                # libcuda and show it accounted as instance 1

The child needs only the NVIDIA driver (libcuda.so.1), no torch: it proves that NVML's process
lists are matched against an instance's process tree on real hardware. Exit status 1 when the
child's VRAM is not found in its instance's usage.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aikore.monitor.gpu import Gpus
from aikore.monitor.sampler import Monitor

# Allocates MiB on GPU 0 through the driver API, says "ready", then waits for stdin to close.
_HOLDER = r"""
import ctypes, sys
cuda = ctypes.CDLL("libcuda.so.1")
def check(code, what):
    if code != 0:
        sys.exit(f"{what} failed with CUDA error {code}")
check(cuda.cuInit(0), "cuInit")
device, context, pointer = ctypes.c_int(), ctypes.c_void_p(), ctypes.c_void_p()
check(cuda.cuDeviceGet(ctypes.byref(device), 0), "cuDeviceGet")
check(cuda.cuCtxCreate_v2(ctypes.byref(context), 0, device), "cuCtxCreate")
check(cuda.cuMemAlloc_v2(ctypes.byref(pointer), ctypes.c_size_t(int(sys.argv[1]) * 2**20)), "cuMemAlloc")
print("ready", flush=True)
sys.stdin.read()
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hold-vram", type=int, metavar="MIB", help="start a child holding this much VRAM")
    args = parser.parse_args()
    holder = _start_holder(args.hold_vram) if args.hold_vram else None
    pids = {1: holder.pid} if holder else {}
    monitor = Monitor(data_dir=Path(tempfile.gettempdir()), instance_pids=lambda: pids, gpus=Gpus.open())
    try:
        monitor.sample_now()
        time.sleep(1.0)  # a whole interval, so CPU percents cover a real span
        sample = monitor.sample_now()
        body = sample.to_json()
        body["gpu_processes"] = {gpu.index: gpu.process_memory for gpu in sample.gpus}
        print(json.dumps(body, indent=2))
        if holder is None:
            return 0
        usage = sample.instance(1)
        held = usage.gpu_memory_bytes if usage else None
        print(f"instance 1 (pid {holder.pid}) holds {held} bytes of VRAM by NVML", file=sys.stderr)
        return 0 if held else 1
    finally:
        monitor.close()
        if holder is not None:
            holder.stdin.close()  # type: ignore[union-attr]
            holder.wait(timeout=30)


def _start_holder(mib: int) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(mib)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    line = holder.stdout.readline().strip()
    if line != "ready":
        holder.wait(timeout=30)
        raise SystemExit(f"VRAM holder did not start (exit {holder.returncode})")
    return holder


if __name__ == "__main__":
    raise SystemExit(main())
