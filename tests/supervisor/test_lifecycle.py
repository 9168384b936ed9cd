"""Start, readiness, crash, never ready, stop of a hostile tree, delete, rebuild: real child processes."""

from __future__ import annotations

import itertools
import os
import signal
import time

import aiohttp
import psutil

from aikore.events import EVENTS
from aikore.supervisor import SUPERVISOR
from aikore.supervisor.events import InstanceChanged
from aikore.supervisor.states import ERROR, RUNNING, STARTING, STOPPED
from tests.helpers import until

from .conftest import MakeClient, api, create, launch_id, launch_processes, status_is


async def _get_info(port: int) -> dict:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/info") as resp:
        return await resp.json()


async def test_start_answers_starting_then_running_once_health_answers(make_client: MakeClient) -> None:
    client = await make_client()
    inst = await create(client, "web", "demo")
    started = await api(client, "POST", f"/api/instances/{inst['id']}/start")
    assert started["status"] == STARTING and started["port"] and started["pid"]
    running = await status_is(client, inst["id"], RUNNING)
    assert running["pid"] == started["pid"] and running["port"] == started["port"]
    info = await _get_info(running["port"])
    env = info["env"]
    assert env["WEBUI_PORT"] == str(running["port"]) and env["WEBUI_HOST"] == "127.0.0.1"
    assert env["INSTANCE_NAME"] == "web" and env["AIKORE_ROOT_PATH"] == "/app/web"
    assert env["GRADIO_ROOT_PATH"] == "/app/web" and env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert env["INSTANCE_CONF_DIR"].endswith("instances/web/config")
    assert env["INSTANCE_OUTPUT_DIR"].endswith("instances/web/output")
    assert env["AIKORE_REBUILD_ENV"] == "0"
    assert info["cwd"].endswith("instances/web")


async def test_start_of_an_active_instance_is_a_conflict(make_client: MakeClient) -> None:
    client = await make_client()
    inst = await create(client, "web", "demo")
    await api(client, "POST", f"/api/instances/{inst['id']}/start")
    again = await api(client, "POST", f"/api/instances/{inst['id']}/start", status=409)
    assert again["error"]["code"] == "instance_active"


async def test_exit_before_ready_is_error_with_exit_code_and_last_lines(make_client: MakeClient) -> None:
    client = await make_client()
    inst = await create(client, "boom", "crash")
    await api(client, "POST", f"/api/instances/{inst['id']}/start")
    failed = await status_is(client, inst["id"], ERROR)
    assert failed["exit_code"] == 3
    assert "exited with code 3" in failed["status_message"]
    assert "crash: something went wrong" in failed["status_message"]
    assert failed["pid"] is None and failed["port"] is None


async def test_crash_while_running_is_error_within_a_second(make_client: MakeClient) -> None:
    client = await make_client()
    inst = await create(client, "web", "demo")
    await api(client, "POST", f"/api/instances/{inst['id']}/start")
    running = await status_is(client, inst["id"], RUNNING)
    tree = psutil.Process(running["pid"]).children(recursive=True)
    app_proc = next(p for p in tree if "aikore.demo" in " ".join(p.cmdline()))
    errors: list[float] = []
    client.app[EVENTS].listen(
        lambda ev: errors.append(time.monotonic())
        if isinstance(ev, InstanceChanged) and ev.instance.status == ERROR
        else None
    )
    killed_at = time.monotonic()
    app_proc.send_signal(signal.SIGKILL)
    failed = await status_is(client, inst["id"], ERROR, within=10)
    assert errors[0] - killed_at < 1.0, "a crash must show as error within a second"
    assert failed["exit_code"] == 128 + signal.SIGKILL
    assert not psutil.pid_exists(running["pid"]) or psutil.Process(running["pid"]).status() == psutil.STATUS_ZOMBIE


async def test_never_ready_is_error_and_its_tree_is_stopped(make_client: MakeClient) -> None:
    client = await make_client(ready_timeout=2.0)
    inst = await create(client, "mute", "never")
    await api(client, "POST", f"/api/instances/{inst['id']}/start")
    marker = launch_id(client, inst["id"])
    assert launch_processes(marker)
    failed = await status_is(client, inst["id"], ERROR, within=20)
    assert "not ready" in failed["status_message"] and "/health" in failed["status_message"]
    assert launch_processes(marker) == []


async def test_stop_kills_grandchildren_term_ignorers_and_escaped_daemons(make_client: MakeClient) -> None:
    client = await make_client(stop_timeout=1.5)
    inst = await create(client, "tree", "tree")
    await api(client, "POST", f"/api/instances/{inst['id']}/start")
    running = await status_is(client, inst["id"], RUNNING)
    marker = launch_id(client, inst["id"])
    procs = await until(lambda: (ps := launch_processes(marker)) and len(ps) >= 7 and ps, what="the whole tree")
    sessions = {p.pid: os.getsid(p.pid) for p in procs}
    assert len(set(sessions.values())) >= 3, "the tree must contain escaped sessions for this test to mean anything"
    begun = time.monotonic()
    stopping = await api(client, "POST", f"/api/instances/{inst['id']}/stop")
    assert stopping["status"] in ("stopping", STOPPED)
    stopped = await status_is(client, inst["id"], STOPPED, within=20)
    # The TERM-ignoring child forced the wait for the stop timeout, then SIGKILL.
    assert time.monotonic() - begun >= 1.4
    assert stopped["pid"] is None and stopped["port"] is None
    assert launch_processes(marker) == []
    for proc in procs:
        assert not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE, proc
    assert running["port"] not in client.app[SUPERVISOR].ports.reserved()


async def test_stop_of_a_stopped_instance_is_a_no_op(make_client: MakeClient) -> None:
    client = await make_client()
    inst = await create(client, "web", "demo")
    data = await api(client, "POST", f"/api/instances/{inst['id']}/stop")
    assert data["status"] == STOPPED


async def test_delete_of_a_running_instance_stops_it_first(make_client: MakeClient) -> None:
    client = await make_client()
    inst = await create(client, "web", "demo")
    await api(client, "POST", f"/api/instances/{inst['id']}/start")
    await status_is(client, inst["id"], RUNNING)
    marker = launch_id(client, inst["id"])
    await api(client, "DELETE", f"/api/instances/{inst['id']}")
    assert launch_processes(marker) == []
    await api(client, "GET", f"/api/instances/{inst['id']}", status=404)


async def test_rebuild_restarts_once_with_rebuild_flag(make_client: MakeClient) -> None:
    client = await make_client()
    inst = await create(client, "env", "envshow", gpu_ids="1,0")
    await api(client, "POST", f"/api/instances/{inst['id']}/start")
    first = await status_is(client, inst["id"], RUNNING)
    moved = await api(client, "POST", f"/api/instances/{inst['id']}/rebuild")
    assert moved["status"] in ("stopping", STARTING, RUNNING)
    second = await until(
        lambda: _running_other_pid(client, inst["id"], first["pid"]), what="the rebuilt instance to run"
    )
    info = await _get_info(second["port"])
    assert info["env"]["AIKORE_REBUILD_ENV"] == "1" and info["env"]["CUDA_VISIBLE_DEVICES"] == "1,0"
    await api(client, "POST", f"/api/instances/{inst['id']}/restart")
    third = await until(lambda: _running_other_pid(client, inst["id"], second["pid"]), what="the restarted instance")
    info = await _get_info(third["port"])
    assert info["env"]["AIKORE_REBUILD_ENV"] == "0"
    log = await api(client, "GET", f"/api/instances/{inst['id']}/logs?tail=1000")
    text = "\n".join(log["lines"])
    assert text.count("start of env") == 3 and "rebuild=1" in text and "(rebuild: AIKORE_REBUILD_ENV=1)" in text


async def _running_other_pid(client, instance_id: int, old_pid: int) -> dict | None:
    data = await api(client, "GET", f"/api/instances/{instance_id}")
    return data if data["status"] == RUNNING and data["pid"] != old_pid else None


async def test_restart_policy_on_failure_backs_off_then_gives_up(make_client: MakeClient) -> None:
    from aikore.supervisor.supervisor import Backoff

    client = await make_client()
    client.app[SUPERVISOR].backoff = Backoff(base=0.5, factor=2.0, max_delay=10.0, max_attempts=3)
    inst = await create(client, "flaky", "crash", restart_policy="on-failure")
    starts: list[float] = []
    seen: set[str] = set()

    def on_event(event) -> None:
        if isinstance(event, InstanceChanged) and event.instance.id == inst["id"]:
            if event.instance.status == STARTING and event.instance.pid:
                starts.append(time.monotonic())
            seen.add(event.instance.status_message or "")

    client.app[EVENTS].listen(on_event)
    await api(client, "POST", f"/api/instances/{inst['id']}/start")
    final = await until(
        lambda: _gave_up(client, inst["id"]), within=60, what="the restart policy to give up"
    )
    assert final["status"] == ERROR and final["exit_code"] == 3
    assert len(starts) == 4  # the first start and three restarts
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps[0] >= 0.5 and gaps[1] >= 1.0 and gaps[2] >= 2.0, gaps
    assert any("restarting in 0.5 s (attempt 1 of 3)" in m for m in seen)


async def _gave_up(client, instance_id: int) -> dict | None:
    data = await api(client, "GET", f"/api/instances/{instance_id}")
    return data if data["status"] == ERROR and "gave up" in (data["status_message"] or "") else None


async def test_restart_policy_never_leaves_it_in_error(make_client: MakeClient) -> None:
    client = await make_client()
    inst = await create(client, "boom", "crash")
    await api(client, "POST", f"/api/instances/{inst['id']}/start")
    failed = await status_is(client, inst["id"], ERROR)
    assert "restarting" not in failed["status_message"]
