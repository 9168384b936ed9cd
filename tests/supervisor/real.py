"""Helpers for fault tests on a real ``aikore`` process: its arguments, states, runs that must refuse."""

from __future__ import annotations

import http.client
import os
import sqlite3
import subprocess
import sys
import urllib.error
from pathlib import Path
from typing import Any

import psutil

from tests.helpers import REPO, AikoreProcess, wait_until

# What a request to an AiKore that killed itself meanwhile raises.
CONNECTION_LOST = (urllib.error.URLError, ConnectionError, http.client.HTTPException, TimeoutError)


def args(blueprints_dir: Path, *extra: str, stop_timeout: float = 2.0) -> list[str]:
    return ["--no-auth", "--blueprints-dir", str(blueprints_dir), "--stop-timeout", f"{stop_timeout:g}", *extra]


def status(proc: AikoreProcess, instance_id: int, *states: str, timeout: float = 30) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        data = proc.request("GET", f"/api/instances/{instance_id}").json()
        return data if data["status"] in states else None

    return wait_until(check, timeout=timeout, what=f"instance {instance_id} to be {'/'.join(states)}")


def create(proc: AikoreProcess, name: str, blueprint: str, **fields: Any) -> dict[str, Any]:
    answer = proc.request("POST", "/api/instances", {"name": name, "blueprint": blueprint, **fields})
    assert answer.status == 201, answer.body
    return answer.json()


def start_running(proc: AikoreProcess, name: str, blueprint: str = "demo", **fields: Any) -> dict[str, Any]:
    """Create ``name`` and start it; returns it once running."""
    created = create(proc, name, blueprint, **fields)
    started = proc.request("POST", f"/api/instances/{created['id']}/start")
    assert started.status == 200, started.body
    return status(proc, created["id"], "running")


def run_aikore(data_dir: Path, *argv: str, port: int = 0, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run aikore to its end (one that must refuse to start); a hang fails the test at ``timeout``."""
    cmd = [sys.executable, "-m", "aikore", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir),
           *argv]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env)


def instance_processes(data_dir: Path, name: str) -> list[psutil.Process]:
    """Live processes started for instance ``name`` of this data dir (by the environment they got)."""
    found = []
    for proc in psutil.process_iter():
        try:
            env = proc.environ()
            if (
                env.get("INSTANCE_NAME") == name
                and env.get("AIKORE_DATA_DIR") == str(data_dir.resolve())
                and proc.status() != psutil.STATUS_ZOMBIE
            ):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def launch_ids(data_dir: Path) -> list[str]:
    with sqlite3.connect(data_dir / "aikore.db") as db:
        return [row[0] for row in db.execute("SELECT launch_id FROM process_groups")]


def rows(data_dir: Path) -> dict[str, str]:
    """Instance name -> status, straight from the database file."""
    with sqlite3.connect(data_dir / "aikore.db") as db:
        return dict(db.execute("SELECT name, status FROM instances"))


def app_process(pid: int) -> psutil.Process:
    """The demo app under an instance's logwriter ``pid``."""
    [demo] = [p for p in psutil.Process(pid).children(recursive=True) if "aikore.demo" in " ".join(p.cmdline())]
    return demo
