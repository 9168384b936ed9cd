"""Internal ports (reservation, conflicts) and the live /api/events stream."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from aikore.store import WORKSPACE
from aikore.supervisor import SUPERVISOR
from aikore.supervisor.ports import PortPool, PortsExhausted
from aikore.supervisor.states import ERROR, RUNNING, STARTING
from tests.helpers import until

from .conftest import MakeClient, api, create, status_is


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something else listens on, with the next one free."""
    for _ in range(50):
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            port = listener.getsockname()[1]
            if port < 65535 and _free(port + 1):
                yield port
                return
    pytest.skip("no pair of adjacent ports to test with")


def _free(port: int) -> bool:
    with socket.socket() as neighbour:
        try:
            neighbour.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_pool_skips_ports_in_use_and_ports_already_reserved(busy_port: int) -> None:
    pool = PortPool(range(busy_port, busy_port + 2))
    assert pool.reserve("a") == busy_port + 1
    with pytest.raises(PortsExhausted):
        pool.reserve("b")
    pool.release(busy_port + 1, "someone-else")
    assert pool.reserved() == {busy_port + 1: "a"}, "only the owner releases a port"
    pool.release(busy_port + 1, "a")
    assert pool.reserve("b", preferred=busy_port) == busy_port + 1


async def test_instance_gets_a_free_port_when_another_program_holds_one(
    make_client: MakeClient, busy_port: int
) -> None:
    client = await make_client()
    client.app[SUPERVISOR].ports.candidates = range(busy_port, busy_port + 2)
    first = await create(client, "one", "demo")
    await api(client, "POST", f"/api/instances/{first['id']}/start")
    running = await status_is(client, first["id"], RUNNING)
    assert running["port"] == busy_port + 1
    # The only other candidate is taken by something else: the start fails clearly, nothing hangs.
    second = await create(client, "two", "demo")
    await api(client, "POST", f"/api/instances/{second['id']}/start")
    failed = await status_is(client, second["id"], ERROR)
    assert "no free internal port" in failed["status_message"]
    # Stopping the first gives its port back for the next start.
    await api(client, "POST", f"/api/instances/{first['id']}/stop")
    await status_is(client, first["id"], "stopped")
    await api(client, "POST", f"/api/instances/{second['id']}/start")
    assert (await status_is(client, second["id"], RUNNING))["port"] == busy_port + 1


_RACY = """#!/usr/bin/env bash
### AIKORE-METADATA-START ###
# aikore.health: /health
### AIKORE-METADATA-END ###
# Says which port it got, then waits for the test before it binds it.
echo "$WEBUI_PORT" > port-wanted.tmp && mv port-wanted.tmp port-wanted
while [ ! -e go ]; do sleep 0.05; done
rm -f go
exec "$AIKORE_PYTHON" -m aikore.demo --host "$WEBUI_HOST" --port "$WEBUI_PORT"
"""


async def test_port_taken_between_reservation_and_bind_is_retried_on_another_port(
    make_client: MakeClient, blueprints_dir: Path
) -> None:
    (blueprints_dir / "racy.sh").write_text(_RACY)
    client = await make_client()
    inst = await create(client, "racy", "racy")
    folder = client.app[WORKSPACE].path("racy")
    await api(client, "POST", f"/api/instances/{inst['id']}/start")
    wanted = folder / "port-wanted"
    first_port = int(await until(lambda: wanted.exists() and wanted.read_text().strip(), what="the first port"))
    wanted.unlink()
    with socket.socket() as thief:  # another program binds the port first
        thief.bind(("127.0.0.1", first_port))
        thief.listen()
        (folder / "go").touch()
        second_port = int(await until(lambda: wanted.exists() and wanted.read_text().strip(), what="a retry"))
        assert second_port != first_port
        (folder / "go").touch()
        running = await status_is(client, inst["id"], RUNNING)
    assert running["port"] == second_port
    log = await api(client, "GET", f"/api/instances/{inst['id']}/logs?tail=200")
    assert sum("start of racy" in line for line in log["lines"]) == 2


_SLOW = """#!/usr/bin/env bash
### AIKORE-METADATA-START ###
# aikore.health: /ready
### AIKORE-METADATA-END ###
exec "$AIKORE_PYTHON" - <<'PY'
import http.server, os
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ready = os.path.exists("ready-now")
        if not ready:
            with open("probes", "a") as probes:
                probes.write("503 ")
        self.send_response(404 if ready else 503)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["WEBUI_PORT"])), Handler).serve_forever()
PY
"""


async def _events(client: TestClient, out: list[tuple[str, dict]], stop_at: str) -> None:
    async with client.get("/api/events") as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        kind = ""
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                out.append((kind, data))
                if kind == "instance" and data.get("status") == stop_at:
                    return


async def test_events_stream_snapshot_then_running_only_after_health_answers_below_500(
    make_client: MakeClient, blueprints_dir: Path
) -> None:
    (blueprints_dir / "slow.sh").write_text(_SLOW)
    client = await make_client()
    inst = await create(client, "slow", "slow")
    received: list[tuple[str, dict]] = []
    reader = asyncio.ensure_future(_events(client, received, RUNNING))
    await until(lambda: received, what="the snapshot")
    assert received[0][0] == "snapshot"
    assert [i["name"] for i in received[0][1]["instances"]] == ["slow"]
    await api(client, "POST", f"/api/instances/{inst['id']}/start")
    await status_is(client, inst["id"], STARTING)
    # A negative: it answered 503 to three health probes (a second or more) and must stay starting.
    probes = client.app[WORKSPACE].path("slow") / "probes"
    await until(lambda: probes.exists() and probes.read_text().count("503") >= 3, what="three probes answered 503")
    assert (await api(client, "GET", f"/api/instances/{inst['id']}"))["status"] == STARTING
    (client.app[WORKSPACE].path("slow") / "ready-now").touch()
    await asyncio.wait_for(reader, 30)
    statuses = [d["status"] for k, d in received[1:] if k == "instance"]
    assert statuses[0] == STARTING and statuses[-1] == RUNNING and statuses.count(RUNNING) == 1
