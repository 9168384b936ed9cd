"""AiKore's own crash and restart: re-adoption after SIGKILL, pid reuse, graceful shutdown, autostart."""

from __future__ import annotations

import asyncio
import signal
import socket
import sqlite3
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil

from aikore.store.db import Store
from aikore.supervisor import SUPERVISOR
from aikore.supervisor.oskit import MARKER
from aikore.supervisor.states import ERROR, RUNNING, STOPPED
from tests.helpers import AikoreProcess, until, wait_until

from .conftest import MakeClient, api, launch_processes, status_is


def _args(blueprints_dir: Path, *extra: str) -> list[str]:
    return ["--no-auth", "--blueprints-dir", str(blueprints_dir), "--stop-timeout", "2", *extra]


def _status(proc: AikoreProcess, instance_id: int, *states: str) -> dict:
    def check() -> dict | None:
        data = proc.request("GET", f"/api/instances/{instance_id}").json()
        return data if data["status"] in states else None

    return wait_until(check, timeout=30, what=f"instance {instance_id} to be {'/'.join(states)}")


def _health(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
        return resp.status


def _launch_ids(data_dir: Path) -> list[str]:
    with sqlite3.connect(data_dir / "aikore.db") as db:
        return [row[0] for row in db.execute("SELECT launch_id FROM process_groups")]


def test_instance_survives_sigkill_of_aikore_and_is_readopted(
    aikore_process: Callable[..., AikoreProcess], blueprints_dir: Path
) -> None:
    first = aikore_process(extra_args=_args(blueprints_dir))
    created = first.request("POST", "/api/instances", {"name": "web", "blueprint": "demo"}).json()
    first.request("POST", f"/api/instances/{created['id']}/start")
    running = _status(first, created["id"], RUNNING)
    pid, port = running["pid"], running["port"]
    log_file = first.data_dir / "instances" / "web" / "logs" / "instance.log"

    first.kill()  # SIGKILL: no cleanup runs in AiKore

    assert psutil.Process(pid).is_running() and _health(port) == 200
    # Same AiKore port: the instance never inherited AiKore's listening socket.
    second = aikore_process(extra_args=_args(blueprints_dir), data_dir=first.data_dir, port=first.port)
    adopted = _status(second, created["id"], RUNNING, ERROR)
    assert adopted["status"] == RUNNING and adopted["pid"] == pid and adopted["port"] == port
    size = log_file.stat().st_size
    # Still served: the new AiKore routes /app/web/ to the adopted process.
    assert second.request("GET", "/app/web/health").status == 200
    # Its output still reaches its log: the demo logs every request.
    wait_until(lambda: log_file.stat().st_size > size, what="the adopted instance's log to grow")
    # Still watched: a crash now is noticed by the new AiKore, which is not its parent.
    [demo] = [p for p in psutil.Process(pid).children(recursive=True) if "aikore.demo" in " ".join(p.cmdline())]
    demo.send_signal(signal.SIGKILL)
    failed = _status(second, created["id"], ERROR)
    assert failed["exit_code"] == 128 + signal.SIGKILL


def test_adopted_instance_stops_with_its_whole_tree(
    aikore_process: Callable[..., AikoreProcess], blueprints_dir: Path
) -> None:
    first = aikore_process(extra_args=_args(blueprints_dir))
    created = first.request("POST", "/api/instances", {"name": "tree", "blueprint": "tree"}).json()
    first.request("POST", f"/api/instances/{created['id']}/start")
    _status(first, created["id"], RUNNING)
    [marker] = _launch_ids(first.data_dir)
    wait_until(lambda: len(launch_processes(marker)) >= 7, what="the whole tree")
    first.kill()
    second = aikore_process(extra_args=_args(blueprints_dir), data_dir=first.data_dir)
    assert _status(second, created["id"], RUNNING, ERROR)["status"] == RUNNING
    second.request("POST", f"/api/instances/{created['id']}/stop")
    _status(second, created["id"], STOPPED)
    assert launch_processes(marker) == []


async def test_reused_pid_is_not_mistaken_for_the_instance(make_client: MakeClient, sup_settings) -> None:
    # A live process that is not the instance holds the stored pid (same number, other create time).
    stranger = await asyncio.create_subprocess_exec("sleep", "300")
    try:
        create_time = psutil.Process(stranger.pid).create_time()
        store = Store(sup_settings.db_path)
        await store.open()
        inst = await store.insert_instance(
            name="ghost", blueprint="demo", status="running", pid=stranger.pid, pid_create_time=create_time - 5.0,
            port=25555,
        )
        await store.close()
        client = await make_client()
        data = await status_is(client, inst.id, ERROR, STOPPED)
        assert data["status"] == ERROR and data["pid"] is None
        assert "was gone when AiKore started" in data["status_message"]
        assert stranger.returncode is None, "the stranger holding the reused pid must not be touched"
        assert psutil.Process(stranger.pid).status() != psutil.STATUS_ZOMBIE
    finally:
        stranger.kill()
        await stranger.wait()


async def test_instance_that_exited_while_aikore_was_down_reports_its_exit_code(
    make_client: MakeClient, sup_settings
) -> None:
    client = await make_client()
    inst = await api(client, "POST", "/api/instances", {"name": "web", "blueprint": "demo"}, 201)
    await api(client, "POST", f"/api/instances/{inst['id']}/start")
    running = await status_is(client, inst["id"], RUNNING)
    # As if AiKore had crashed: nothing watches the instance any more when it dies alone.
    root = psutil.Process(running["pid"])
    [demo] = [p for p in root.children(recursive=True) if "aikore.demo" in " ".join(p.cmdline())]
    proc = client.app[SUPERVISOR].get(inst["id"])
    await proc._cancel_watcher()
    demo.send_signal(signal.SIGKILL)
    await until(lambda: proc.groups["main"].handle.poll(), what="the instance to exit (reaped as init would)")
    again = await make_client()  # a second AiKore on the same data dir re-adopts at start
    data = await status_is(again, inst["id"], ERROR, STOPPED)
    assert data["status"] == ERROR and data["exit_code"] == 128 + signal.SIGKILL
    assert "while AiKore was not running" in data["status_message"]


def _open_stream(port: int, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    return sock


def test_graceful_stop_of_aikore_stops_every_instance(
    aikore_process: Callable[..., AikoreProcess], blueprints_dir: Path
) -> None:
    proc = aikore_process(extra_args=_args(blueprints_dir))
    ids = []
    for name, blueprint in (("one", "demo"), ("two", "tree")):
        created = proc.request("POST", "/api/instances", {"name": name, "blueprint": blueprint}).json()
        proc.request("POST", f"/api/instances/{created['id']}/start")
        ids.append(created["id"])
    for instance_id in ids:
        _status(proc, instance_id, RUNNING)
    markers = _launch_ids(proc.data_dir)
    assert len(markers) == 2 and all(launch_processes(m) for m in markers)
    # Open live streams must not hold the shutdown up (aiohttp would wait 60 s for them).
    streams = [_open_stream(proc.port, path) for path in ("/api/events", f"/api/instances/{ids[0]}/logs/stream")]
    begun = time.monotonic()
    assert proc.stop(signal.SIGTERM, timeout=60) == 0
    assert time.monotonic() - begun < 15
    for sock in streams:
        sock.close()
    for marker in markers:
        assert launch_processes(marker) == []
    with sqlite3.connect(proc.data_dir / "aikore.db") as db:
        assert {row[0] for row in db.execute("SELECT status FROM instances")} == {STOPPED}


def test_autostart_instances_start_with_aikore_staggered(
    aikore_process: Callable[..., AikoreProcess], blueprints_dir: Path
) -> None:
    first = aikore_process(extra_args=_args(blueprints_dir))
    ids = [
        first.request("POST", "/api/instances", {"name": n, "blueprint": "demo", "autostart": a}).json()["id"]
        for n, a in (("auto1", True), ("manual", False), ("auto2", True))
    ]
    assert first.stop() == 0
    second = aikore_process(extra_args=_args(blueprints_dir), data_dir=first.data_dir)
    one, two = _status(second, ids[0], RUNNING), _status(second, ids[2], RUNNING)
    assert second.request("GET", f"/api/instances/{ids[1]}").json()["status"] == STOPPED
    started = sorted(psutil.Process(d["pid"]).create_time() for d in (one, two))
    assert started[1] - started[0] >= 1.5  # staggered by 2 s
    assert all(MARKER in psutil.Process(d["pid"]).environ() for d in (one, two))
