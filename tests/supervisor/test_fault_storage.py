"""A full disk and a database made read-only under a running AiKore (root: a small tmpfs, chattr).

Nothing answers 500, nothing is half made, the in-memory state never runs ahead of the database,
the watcher never stops: an instance that died meanwhile is recorded once the disk has room again.
The logwriter keeps the app's output flowing, drops what it cannot write, counts it, and recovers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.helpers import AikoreProcess, Response, wait_until

from .real import app_process, args, create, instance_processes, start_running, status

_TMPFS_SIZE = "64m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A data dir on a tmpfs of its own, so it can be filled up (root only)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    data = tmp_path / "data"
    data.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={_TMPFS_SIZE}", "tmpfs", str(data)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield data
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)


@contextlib.contextmanager
def full(disk: Path) -> Iterator[None]:
    """Fill ``disk`` to the last byte for the duration, then free it."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        for size in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * size)
    try:
        yield
    finally:
        filler.unlink()


def _error(answer: Response) -> dict:
    return answer.json()["error"]


def _written(proc: psutil.Process) -> int:
    """Bytes ``proc`` wrote so far (to its pipe, for a process under the logwriter)."""
    return proc.io_counters().write_chars


def _wrote_more(procs: list[psutil.Process], than: int, by: int = 256 * 1024) -> bool:
    """Whether ``procs`` wrote ``by`` bytes more than ``than``: far more than any file's slack."""
    return sum(_written(p) for p in procs if p.is_running()) > than + by


@pytest.mark.timeout(180)
def test_a_full_disk_answers_507_keeps_the_app_and_its_output_flowing_and_misses_no_crash(
    small_disk: Path, aikore_process: Callable[..., AikoreProcess], blueprints_dir: Path
) -> None:
    proc = aikore_process(extra_args=args(blueprints_dir), data_dir=small_disk)
    flood = start_running(proc, "flood", "flood")
    victim = start_running(proc, "victim", "demo")
    writer = psutil.Process(flood["pid"])
    log = small_disk / "instances" / "flood" / "logs" / "instance.log"
    with full(small_disk):
        created = proc.request("POST", "/api/instances", {"name": "more", "blueprint": "demo"})
        assert created.status == 507 and _error(created)["code"] == "disk_full", created.body
        assert [p.name for p in (small_disk / "instances").iterdir() if p.name.startswith(".")] == []
        patched = proc.request("PATCH", f"/api/instances/{victim['id']}", {"restart_policy": "on-failure"})
        assert patched.status == 507, patched.body
        stopped = proc.request("POST", f"/api/instances/{victim['id']}/stop")
        assert stopped.status == 507, stopped.body
        # Nothing changed, in memory as in the database: still running, same process, still served.
        same = proc.request("GET", f"/api/instances/{victim['id']}").json()
        assert (same["status"], same["pid"], same["restart_policy"]) == ("running", victim["pid"], "never")
        assert proc.request("GET", "/app/victim/health").status == 200
        # It dies while nothing can be recorded: its exit is seen, and recording it goes on being tried.
        app_process(victim["pid"]).send_signal(signal.SIGKILL)
        wait_until(lambda: "cannot record a change yet" in proc.output(), what="the watcher to see the crash")
        # The flood's output goes on through the pipe (into nothing); its logwriter stays, the app serves.
        apps = writer.children(recursive=True)
        begun = sum(_written(p) for p in apps)
        wait_until(lambda: _wrote_more(apps, begun), what="the app to write on while the disk is full")
        assert writer.is_running() and proc.request("GET", "/app/flood/health").status == 200
    failed = status(proc, victim["id"], "error", timeout=15)
    assert failed["exit_code"] == 128 + signal.SIGKILL
    # Space is back: the log says how much was dropped, and goes on.
    wait_until(lambda: "bytes of output were dropped: No space left on device" in log.read_text(errors="replace"),
               what="the logwriter's note on what it dropped")
    size = log.stat().st_size
    wait_until(lambda: log.stat().st_size > size, what="the log to grow again")
    assert proc.request("GET", f"/api/instances/{flood['id']}").json()["status"] == "running"
    assert create(proc, "more", "demo")["name"] == "more"
    assert proc.request("POST", f"/api/instances/{flood['id']}/stop").status == 200
    status(proc, flood["id"], "stopped")


def test_the_logwriter_drops_what_a_full_disk_refuses_counts_it_and_recovers(small_disk: Path) -> None:
    from aikore.supervisor import logwriter

    log = small_disk / "logs" / "app.log"
    stop = small_disk / "stop"
    script = (
        "import os, sys, time\n"
        f"while not os.path.exists({str(stop)!r}):\n"
        "    print('x' * 1000, flush=True)\n"
        "    time.sleep(0.002)\n"
        "print('after the disk had room again', flush=True)\n"
    )
    writer = subprocess.Popen(
        [sys.executable, "-I", logwriter.__file__, "--log", str(log), "--", sys.executable, "-c", script]
    )
    try:
        [app] = wait_until(lambda: psutil.Process(writer.pid).children(), what="the command to run")
        wait_until(lambda: log.is_file() and log.stat().st_size > 10_000, what="the log to fill")
        with full(small_disk):
            begun = _written(app)
            # The command is never blocked by its output while nothing can be written.
            wait_until(lambda: _wrote_more([app], begun), what="the command to write on")
            assert writer.poll() is None
        stop.touch()
        assert writer.wait(timeout=30) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
    text = log.read_text()
    note = next(line for line in text.splitlines() if "bytes of output were dropped" in line)
    dropped = int(note.split("] ")[1].split(" bytes")[0])
    assert dropped >= 256 * 1024 - 8192 and "No space left on device" in note
    assert text.rstrip().splitlines()[-2] == "after the disk had room again"


@pytest.mark.timeout(120)
def test_a_database_made_read_only_answers_503_and_spawns_nothing_it_cannot_record(
    aikore_process: Callable[..., AikoreProcess], blueprints_dir: Path
) -> None:
    if shutil.which("chattr") is None or os.geteuid() != 0:
        pytest.skip("chattr +i (as root) makes the database read-only under AiKore")
    proc = aikore_process(extra_args=args(blueprints_dir))
    running = start_running(proc, "web")
    idle = create(proc, "idle", "demo")
    db = proc.data_dir / "aikore.db"
    # Not the -shm file: SQLite maps it, and an immutable mapping would crash the process.
    frozen = [str(db), str(db) + "-wal"]
    if subprocess.run(["chattr", "+i", *frozen], capture_output=True).returncode != 0:
        pytest.skip("this file system does not support chattr +i")
    try:
        for method, path, body in (
            ("PATCH", f"/api/instances/{idle['id']}", {"gpu_ids": "1"}),
            ("POST", f"/api/instances/{idle['id']}/start", None),
            ("POST", f"/api/instances/{running['id']}/stop", None),
        ):
            answer = proc.request(method, path, body)
            assert answer.status == 503, (method, path, answer.status, answer.body)
            assert _error(answer)["code"] == "storage_unwritable" and "writable" in _error(answer)["message"]
        assert instance_processes(proc.data_dir, "idle") == [], "nothing was spawned that could not be recorded"
        assert proc.request("GET", f"/api/instances/{idle['id']}").json()["status"] == "stopped"
        assert proc.request("GET", f"/api/instances/{running['id']}").json()["status"] == "running"
    finally:
        subprocess.run(["chattr", "-i", *frozen], check=True)
    assert proc.request("PATCH", f"/api/instances/{idle['id']}", {"gpu_ids": "1"}).status == 200
    assert proc.request("POST", f"/api/instances/{running['id']}/stop").status == 200
    status(proc, running["id"], "stopped")
