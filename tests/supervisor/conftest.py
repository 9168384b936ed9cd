"""Fixtures: test blueprints (small real scripts), an in-process AiKore with short timeouts, helpers."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from aiohttp.test_utils import TestClient

from aikore.app import create_app
from aikore.config import Settings
from aikore.supervisor import SUPERVISOR
from aikore.supervisor.oskit import MARKER
from tests.helpers import until

_HEADER = """#!/usr/bin/env bash
### AIKORE-METADATA-START ###
# aikore.name: {name}
# aikore.health: /health
### AIKORE-METADATA-END ###
"""
_DEMO = 'exec "$AIKORE_PYTHON" -m aikore.demo --host "$WEBUI_HOST" --port "$WEBUI_PORT"\n'

BLUEPRINTS = {
    # Exits on its own before it is ever ready.
    "crash": 'echo "crash: line one"\necho "crash: something went wrong" >&2\nexit 3\n',
    # Runs but never listens.
    "never": 'echo "never: waiting forever"\nexec sleep 1000\n',
    # A tree that a plain group kill would not fully stop.
    "tree": (
        "sleep 1000 &\n"
        "bash -c 'trap \"\" TERM; while :; do sleep 0.2; done' &\n"
        "setsid sleep 1001 &\n"
        "\"$AIKORE_PYTHON\" -c 'import os, time\n"
        "if os.fork(): os._exit(0)\n"
        "os.setsid()\n"
        "if os.fork(): os._exit(0)\n"
        "time.sleep(1002)' &\n" + _DEMO
    ),
    # Writes a line every 20 ms besides serving: log rotation and follow.
    "chatty": '( i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.02; done ) &\n' + _DEMO,
    # Writes a 1 KB line every 5 ms besides serving: a full disk is felt at once.
    "flood": "( while :; do printf '%01000d\\n' 0; sleep 0.005; done ) &\n" + _DEMO,
    # Shows the environment it got; ready like the demo.
    "envshow": 'echo "rebuild=$AIKORE_REBUILD_ENV cuda=$CUDA_VISIBLE_DEVICES"\n' + _DEMO,
    # A helper that leaves everything a plain stop looks for: its tree (double fork), its session
    # and group (setsid) and the launch marker (an empty environment); it ignores SIGTERM too.
    "escaper": (
        "\"$AIKORE_PYTHON\" -c 'import os, signal\n"
        "if os.fork(): os._exit(0)\n"
        "os.setsid()\n"
        "if os.fork(): os._exit(0)\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "open(\"escaped.pid.tmp\", \"w\").write(str(os.getpid()))\n"
        "os.rename(\"escaped.pid.tmp\", \"escaped.pid\")\n"
        "os.execve(\"/bin/sleep\", [\"sleep\", \"1003\"], {})' &\n" + _DEMO
    ),
    # Its launch script ignores SIGTERM and stays (the app itself does not): a stop takes the grace.
    "stubborn": (
        "trap '' TERM\n"
        '"$AIKORE_PYTHON" -m aikore.demo --host "$WEBUI_HOST" --port "$WEBUI_PORT" &\n'
        "while :; do sleep 0.2; done\n"
    ),
    # Binds its port only after two seconds (another program may take it meanwhile).
    "slowbind": "sleep 2\n" + _DEMO,
}


def write_blueprints(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in BLUEPRINTS.items():
        (folder / f"{name}.sh").write_text(_HEADER.format(name=name) + body)
    return folder


@pytest.fixture(autouse=True)
def reap_instances(tmp_path: Path) -> Iterator[None]:
    """After each test, SIGKILL any instance process a failed test left behind (found by its env)."""
    yield
    data_dir = str(tmp_path.resolve())
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("AIKORE_DATA_DIR", "").startswith(data_dir):
                proc.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue


@pytest.fixture
def blueprints_dir(tmp_path: Path) -> Path:
    return write_blueprints(tmp_path / "blueprints")


@pytest.fixture
def sup_settings(tmp_path: Path, blueprints_dir: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        blueprints_dir=blueprints_dir,
        auth="none",
        public_ports=range(0),
        stop_timeout=1.5,
        ready_timeout=30.0,
    )


MakeClient = Callable[..., Awaitable[TestClient]]


@pytest.fixture
def make_client(aiohttp_client: Callable[..., Awaitable[TestClient]], sup_settings: Settings) -> MakeClient:
    """``await make_client(ready_timeout=2)``: an in-process AiKore on the test settings."""

    async def make(**overrides: Any) -> TestClient:
        settings = dataclasses.replace(sup_settings, **overrides)
        return await aiohttp_client(create_app(settings))

    return make


async def api(client: TestClient, method: str, path: str, body: Any = None, status: int | None = 200) -> Any:
    resp = await client.request(method, path, json=body)
    data = await resp.json()
    if status is not None:
        assert resp.status == status, data
    return data


async def create(client: TestClient, name: str, blueprint: str, **fields: Any) -> dict[str, Any]:
    return await api(client, "POST", "/api/instances", {"name": name, "blueprint": blueprint, **fields}, 201)


async def status_is(client: TestClient, instance_id: int, *states: str, within: float = 30.0) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        data = await api(client, "GET", f"/api/instances/{instance_id}")
        return data if data["status"] in states else None

    return await until(check, within, what=f"instance {instance_id} to be {'/'.join(states)}")


def launch_processes(launch_id: str) -> list[psutil.Process]:
    """Every live process carrying the launch marker (the whole tree, escaped daemons included)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(MARKER) == launch_id and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def launch_id(client: TestClient, instance_id: int) -> str:
    return client.app[SUPERVISOR].get(instance_id).groups["main"].launch_id
