"""kill -9 of AiKore at the worst moments, and races, on a real AiKore.

``AIKORE_TEST_CRASH_AT=<point>`` makes AiKore SIGKILL itself between two steps of a change
(``aikore/supervisor/crashpoints.py``); the next AiKore must complete or roll back what it found:
no row without its folder or folder without its row, no process the database does not know of,
no second copy, no lost restart.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from aikore.supervisor.crashpoints import ENV
from tests.helpers import AikoreProcess, wait_until

from .real import (
    CONNECTION_LOST,
    args,
    create,
    instance_processes,
    launch_ids,
    rows,
    start_running,
    status,
)


def _crashing(aikore_process: Callable[..., AikoreProcess], blueprints_dir: Path, point: str) -> AikoreProcess:
    return aikore_process(extra_args=args(blueprints_dir), env={ENV: point})


def _dies_during(proc: AikoreProcess, method: str, path: str, body: object = None) -> None:
    try:
        answer = proc.request(method, path, body)
    except CONNECTION_LOST:
        pass
    else:
        pytest.fail(f"AiKore answered {answer.status} instead of dying at its crash point")
    assert proc.proc is not None and proc.proc.wait(timeout=10) == -signal.SIGKILL


def test_a_create_cut_between_its_row_and_its_folder_is_completed_at_the_next_start(
    aikore_process: Callable[..., AikoreProcess], blueprints_dir: Path
) -> None:
    first = _crashing(aikore_process, blueprints_dir, "create:row")
    _dies_during(first, "POST", "/api/instances", {"name": "web", "blueprint": "demo"})
    second = aikore_process(extra_args=args(blueprints_dir), data_dir=first.data_dir)
    [web] = second.request("GET", "/api/instances").json()
    assert web["name"] == "web"
    instances = first.data_dir / "instances"
    assert (instances / "web" / "launch.sh").is_file()
    assert [p.name for p in instances.iterdir()] == ["web"], "no staging folder is left"
    second.request("POST", f"/api/instances/{web['id']}/start")
    assert status(second, web["id"], "running")["pid"]


@pytest.mark.parametrize("point", ["start:recorded", "start:spawned-unrecorded", "start:spawned"])
def test_a_start_cut_before_it_was_recorded_is_rolled_back_and_never_duplicated(
    aikore_process: Callable[..., AikoreProcess], blueprints_dir: Path, point: str
) -> None:
    first = _crashing(aikore_process, blueprints_dir, point)
    web = create(first, "web", "demo")
    _dies_during(first, "POST", f"/api/instances/{web['id']}/start")
    data_dir = first.data_dir
    [marker] = launch_ids(data_dir)
    if point != "start:recorded":
        # Spawned, unknown to the row: exactly the processes that used to run on, untracked.
        wait_until(lambda: instance_processes(data_dir, "web"), what="the spawned launch to run")
    second = aikore_process(extra_args=args(blueprints_dir), data_dir=data_dir)
    assert status(second, web["id"], "stopped")["pid"] is None
    assert instance_processes(data_dir, "web") == [], "what the interrupted start spawned is stopped"
    assert launch_ids(data_dir) == []
    second.request("POST", f"/api/instances/{web['id']}/start")
    running = status(second, web["id"], "running")
    [current] = launch_ids(data_dir)
    assert current != marker
    everything = instance_processes(data_dir, "web")
    assert everything and all(p.environ().get("AIKORE_LAUNCH_ID") == current for p in everything), (
        "one copy only: every process of the instance belongs to the new launch"
    )
    assert psutil.Process(running["pid"]).is_running()


@pytest.mark.parametrize("point", ["delete:folder", "delete:row"])
def test_a_delete_cut_midway_is_completed_and_frees_the_name(
    aikore_process: Callable[..., AikoreProcess], blueprints_dir: Path, point: str
) -> None:
    first = _crashing(aikore_process, blueprints_dir, point)
    web = start_running(first, "web")
    _dies_during(first, "DELETE", f"/api/instances/{web['id']}")
    assert instance_processes(first.data_dir, "web") == [], "the delete stopped it before the crash"
    second = aikore_process(extra_args=args(blueprints_dir), data_dir=first.data_dir)
    assert second.request("GET", f"/api/instances/{web['id']}").status == 404
    assert rows(first.data_dir) == {}
    assert [p.name for p in (first.data_dir / "instances").iterdir()] == []
    assert [p.name.split("-")[0] for p in (first.data_dir / "trash").iterdir()] == ["web"], "kept in the trash"
    assert create(second, "web", "demo")["name"] == "web", "the name is free again"


def test_a_delete_right_after_a_restart_waits_for_it_and_nothing_comes_back(
    aikore_process: Callable[..., AikoreProcess], blueprints_dir: Path
) -> None:
    proc = aikore_process(extra_args=args(blueprints_dir))
    web = start_running(proc, "web")
    assert proc.request("POST", f"/api/instances/{web['id']}/restart").status == 200
    assert proc.request("DELETE", f"/api/instances/{web['id']}").status == 200
    folder = proc.data_dir / "instances" / "web"
    # The restart used to spawn the deleted instance again (and recreate its folder) just after.
    observed_until = time.monotonic() + 1.5
    while time.monotonic() < observed_until:
        assert instance_processes(proc.data_dir, "web") == [] and not folder.exists()
        time.sleep(0.05)
    assert proc.request("GET", "/api/instances").json() == []


def test_a_pending_on_failure_restart_survives_a_kill_of_aikore(
    aikore_process: Callable[..., AikoreProcess], blueprints_dir: Path
) -> None:
    first = aikore_process(extra_args=args(blueprints_dir))
    boom = create(first, "boom", "crash", restart_policy="on-failure")
    first.request("POST", f"/api/instances/{boom['id']}/start")

    def message() -> str:
        return first.request("GET", f"/api/instances/{boom['id']}").json()["status_message"] or ""

    # The third failure waits 4 s before its restart: AiKore dies during that wait.
    wait_until(lambda: "restarting in 4 s (attempt 3 of 5)" in message(), what="the third failure")
    first.kill()
    second = aikore_process(extra_args=args(blueprints_dir), data_dir=first.data_dir)

    def fourth() -> dict | None:
        data = second.request("GET", f"/api/instances/{boom['id']}").json()
        return data if "(attempt 4 of 5)" in (data["status_message"] or "") else None

    failed = wait_until(fourth, timeout=20, what="the restart the first AiKore had scheduled, and its failure")
    assert failed["status"] == "error" and failed["exit_code"] == 3
