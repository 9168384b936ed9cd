"""A real ``aikore --slurm`` against the test cluster: its blueprints, and creating and watching instances."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.helpers import AikoreProcess, wait_until

HEADER = """#!/usr/bin/env bash
### AIKORE-METADATA-START ###
# aikore.name: {name}
# aikore.health: /health
### AIKORE-METADATA-END ###
"""
BLUEPRINTS = {
    # The offline demo app, saying where it runs first (the live log shows it).
    "web": 'echo "web: on $SLURMD_NODENAME at $WEBUI_HOST:$WEBUI_PORT job $SLURM_JOB_ID"\n'
           'exec "$AIKORE_PYTHON" -m aikore.demo --host "$WEBUI_HOST" --port "$WEBUI_PORT"\n',
    "crash": 'echo "crash: giving up"\nexit 7\n',
}
# ``aikore(env=None)`` starts one on the test's data dir (again, after a kill: the same data dir).
Start = Callable[..., AikoreProcess]


def create(proc: AikoreProcess, name: str, blueprint: str = "web", **fields: Any) -> dict[str, Any]:
    answer = proc.request("POST", "/api/instances", {"name": name, "blueprint": blueprint, **fields})
    assert answer.status == 201, answer.body
    created = answer.json()
    started = proc.request("POST", f"/api/instances/{created['id']}/start")
    assert started.status == 200, started.body
    return started.json()


def instance(proc: AikoreProcess, instance_id: int, *states: str, timeout: float = 60) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        data = proc.request("GET", f"/api/instances/{instance_id}").json()
        return data if data["status"] in states else None

    return wait_until(check, timeout, what=f"instance {instance_id} to be {'/'.join(states)}", interval=0.2)
