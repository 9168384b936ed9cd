"""py-spy against the running aikore process: where its CPU goes under a wrk load.

Records collapsed stacks (py-spy's ``raw`` format, which flamegraph.pl, inferno and
https://www.speedscope.app open as they are) per thread, without pausing the process (native
frames would need pausing it, which here cut its throughput by two thirds and so misplaced the
time), and writes a plain-text summary beside them: the threads, then the functions and files
holding the most samples by themselves (self) and with their callees (total).
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

OUT_DIR = Path(__file__).resolve().parent / ".profile"


def pyspy() -> Path:
    """The py-spy next to this interpreter, pip-installed into it when missing."""
    exe = Path(sys.executable).parent / "py-spy"
    if not exe.exists():
        print("installing py-spy into the venv", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "py-spy"], check=True)
    if not exe.exists():
        raise SystemExit(f"pip installed no {exe}")
    return exe


@contextmanager
def recording(pid: int, seconds: float, raw: Path) -> Iterator[None]:
    """Samples ``pid`` for ``seconds`` while the body runs (start the load inside it)."""
    raw.parent.mkdir(parents=True, exist_ok=True)
    cmd = [pyspy(), "record", "--pid", str(pid), "--duration", str(math.ceil(seconds)), "--rate", "200",
           "--nonblocking", "--threads", "--function", "--format", "raw", "--output", str(raw)]
    log = raw.with_suffix(".log")
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(c) for c in cmd], stdout=out, stderr=subprocess.STDOUT)
    try:
        yield
    finally:
        proc.wait(timeout=seconds + 60)
    if proc.returncode != 0 or not raw.exists():
        raise SystemExit(f"py-spy failed ({log}):\n{log.read_text(errors='replace')[-2000:]}")


# Frames every sample of the main thread passes through: left out of the "total" list.
_ENTRY_FILES = ("<frozen runpy>", "aikore/__main__.py", "aikore/cli.py", "asyncio/runners.py")


def summary(raw: Path, top: int = 15) -> str:
    """Text table of the threads, functions and files holding the most samples in a collapsed-stack file."""
    threads: Counter[str] = Counter()
    self_fn: Counter[str] = Counter()
    self_file: Counter[str] = Counter()
    total_fn: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count, frames = int(count_text), stack.split(";")
        samples += count
        if frames[0].startswith("thread ("):
            threads[frames.pop(0)] += count
        leaf = frames[-1] if frames else "(no Python frame)"
        self_fn[leaf] += count
        self_file[_file_of(leaf)] += count
        for frame in set(frames):
            if _file_of(frame) not in _ENTRY_FILES:
                total_fn[frame] += count
    if not samples:
        return f"{raw}: no samples"
    lines = [
        f"{raw.name}: {samples} samples at 200/s, idle threads left out. Self time in Runner.run",
        "(asyncio/runners.py) is uvloop's C event loop: its system calls and its own work.",
    ]
    for title, counter in (("by thread", threads), ("self, by function", self_fn), ("self, by file", self_file),
                           ("total (with callees), by function", total_fn)):
        lines += ["", f"  {title}:"]
        lines += [f"    {100 * n / samples:5.1f}%  {name}" for name, n in counter.most_common(top)]
    return "\n".join(lines)


def _file_of(frame: str) -> str:
    # Frames read "function (file:line)"; with --function the line is the function's first.
    inside = frame.rpartition(" (")[2].rstrip(")")
    return inside.rpartition(":")[0] if ":" in inside else inside
