"""Nothing waits for another instance's stop, on a real AiKore: not a create or start while a
SIGTERM-ignoring instance is deleted or restarted, not the API after a kill -9 during slow stops,
not a graceful stop of AiKore with an open proxied websocket or stream."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import AikoreProcess, until

from .real import args, create, instance_processes, launch_ids, start_running, status

# "tree" has a child that ignores SIGTERM, "stubborn" a launch script that does: each of their
# stops takes the whole grace.
SLOW_STOP = 6.0


def _timed(call: Callable[[], object]) -> float:
    begun = time.monotonic()
    call()
    return time.monotonic() - begun


@pytest.mark.parametrize("action", ["DELETE", "restart"])
def test_a_slow_stop_of_one_instance_holds_up_no_other(
    aikore_process: Callable[..., AikoreProcess], blueprints_dir: Path, action: str
) -> None:
    proc = aikore_process(extra_args=args(blueprints_dir, stop_timeout=SLOW_STOP))
    slow = start_running(proc, "slow", "tree")
    idle = create(proc, "idle", "demo")
    path = f"/api/instances/{slow['id']}" + ("" if action == "DELETE" else "/restart")
    answers: list[int] = []
    worker = threading.Thread(target=lambda: answers.append(proc.request(action if action == "DELETE" else "POST",
                                                                          path, timeout=60).status))
    worker.start()
    try:
        status(proc, slow["id"], "stopping")
        created = _timed(lambda: create(proc, "fresh", "demo"))
        started = _timed(lambda: proc.request("POST", f"/api/instances/{idle['id']}/start"))
        assert created < 1.0 and started < 1.0, (created, started)
        assert proc.request("GET", f"/api/instances/{slow['id']}").json()["status"] == "stopping"
    finally:
        worker.join(timeout=60)
    assert answers == [200]


def test_after_a_kill_during_three_slow_stops_the_next_aikore_answers_at_once_and_stops_them_in_parallel(
    aikore_process: Callable[..., AikoreProcess], blueprints_dir: Path
) -> None:
    first = aikore_process(extra_args=args(blueprints_dir, stop_timeout=SLOW_STOP))
    slow = [start_running(first, f"slow{n}", "stubborn") for n in range(3)]
    markers = launch_ids(first.data_dir)
    for inst in slow:
        assert first.request("POST", f"/api/instances/{inst['id']}/stop").json()["status"] == "stopping"
    first.kill()
    begun = time.monotonic()
    second = aikore_process(extra_args=args(blueprints_dir, stop_timeout=SLOW_STOP), data_dir=first.data_dir)
    answered = time.monotonic() - begun
    assert answered < 5.0, f"the API answered only after {answered:.1f} s"
    assert {second.request("GET", f"/api/instances/{i['id']}").json()["status"] for i in slow} == {"stopping"}
    for inst in slow:
        status(second, inst["id"], "stopped", timeout=3 * SLOW_STOP)
    stopped = time.monotonic() - begun
    assert SLOW_STOP <= stopped < 2 * SLOW_STOP, f"the stops ran one after another ({stopped:.1f} s)"
    assert markers and all(not instance_processes(first.data_dir, i["name"]) for i in slow)


async def _open_websocket(session: aiohttp.ClientSession, base: str) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(f"{base}/app/web/ws")
    await ws.send_str("ping")
    reply = await ws.receive(timeout=10)
    assert reply.type is aiohttp.WSMsgType.TEXT
    return ws


async def _open_stream(session: aiohttp.ClientSession, base: str) -> aiohttp.ClientResponse:
    stream = await session.get(f"{base}/app/web/events")
    assert stream.status == 200
    await stream.content.readline()
    return stream


@pytest.mark.timeout(120)
async def test_a_graceful_stop_with_an_open_proxied_websocket_and_stream_takes_the_stop_timeout_at_most(
    aikore_process: Callable[..., AikoreProcess], blueprints_dir: Path
) -> None:
    stop_timeout = 2.0
    proc = await asyncio.to_thread(aikore_process, extra_args=args(blueprints_dir, stop_timeout=stop_timeout))
    web = await asyncio.to_thread(start_running, proc, "web")
    async with aiohttp.ClientSession() as session:
        ws = await _open_websocket(session, proc.base)
        stream = await _open_stream(session, proc.base)
        begun = time.monotonic()
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGTERM)
        await until(lambda: proc.proc.poll() is not None, within=60, what="AiKore to exit")
        took = time.monotonic() - begun
        closed = await ws.receive(timeout=5)
        assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
        stream.close()
    assert proc.proc.returncode == 0
    # The instance is stopped within its stop timeout (plus AiKore's own few hundred ms).
    assert took < stop_timeout + 3.0, f"AiKore took {took:.1f} s to stop"
    assert instance_processes(proc.data_dir, "web") == [] and web["pid"]
