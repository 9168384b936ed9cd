"""The route table follows instances: in-process AiKore, real demo instances, real sockets."""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
import jsonschema
import pytest
from aiohttp.test_utils import TestClient

from aikore.config import SETTINGS
from aikore.events import EventBus
from aikore.routing import Routing
from aikore.store.instance import Instance
from aikore.supervisor.events import InstanceChanged, InstanceDeleted, InstanceRenamed, Runtime
from proxy import RouteTable
from tests.helpers import until


async def _instance(client: TestClient, instance_id: int) -> dict[str, Any]:
    resp = await client.get(f"/api/instances/{instance_id}")
    assert resp.status == 200
    return await resp.json()


async def _wait_status(client: TestClient, instance_id: int, status: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        data = await _instance(client, instance_id)
        if data["status"] == "error":
            pytest.fail(f"instance {instance_id} failed: {data}")
        return data if data["status"] == status else None

    return await until(check, 60, what=f"instance {instance_id} to be {status}")


async def _create(client: TestClient, **fields: Any) -> dict[str, Any]:
    resp = await client.post("/api/instances", json={"blueprint": "demo", **fields})
    assert resp.status == 201, await resp.text()
    return await resp.json()


def test_events_set_and_remove_routes_with_their_mode() -> None:
    bus, table = EventBus(), RouteTable()
    routing = Routing(table)
    bus.listen(routing.on_event)
    running = Instance(1, "comfy", "comfyui", status="running", port=7001)
    keep = Runtime(proxy_mode="keep-prefix")
    bus.publish(InstanceChanged(running, keep))
    route = table.get("comfy")
    assert route is not None and route.live and route.mode == "keep-prefix" and route.port == 7001
    bus.publish(InstanceChanged(running.replace(status="stopped", port=None), keep))
    assert table.get("comfy") is route and not route.live
    bus.publish(InstanceDeleted(running))
    assert table.get("comfy") is None


def test_a_rename_moves_the_route_to_the_new_name() -> None:
    bus, table = EventBus(), RouteTable()
    bus.listen(Routing(table).on_event)
    old = Instance(1, "comfy", "comfyui", status="running", port=7001)
    bus.publish(InstanceChanged(old, Runtime()))
    bus.publish(InstanceRenamed("comfy", old.replace(name="comfy2"), Runtime()))
    assert table.get("comfy") is None
    route = table.get("comfy2")
    assert route is not None and route.live and route.port == 7001


def test_unknown_mode_falls_back_to_strip_prefix() -> None:
    table = RouteTable()
    Routing(table).apply(Instance(1, "odd", "demo", status="running", port=1), Runtime(proxy_mode="sideways"))
    route = table.get("odd")
    assert route is not None and route.mode == "strip-prefix"


async def test_a_started_instance_is_served_under_app_and_counted(client: TestClient) -> None:
    created = await _create(client, name="web")
    resp = await client.get("/app/web/")
    assert resp.status == 503
    assert "not running" in await resp.text()

    assert (await client.post(f"/api/instances/{created['id']}/start")).status == 200
    await _wait_status(client, created["id"], "running")
    resp = await client.get("/app/web/info?x=1")
    assert resp.status == 200
    info = await resp.json()
    assert info["path"] == "/info?x=1"
    assert info["headers"]["X-Forwarded-Prefix"] == "/app/web"

    data = await _instance(client, created["id"])
    assert data["proxy"]["requests"] >= 1
    assert data["proxy"]["bytes_out"] > 0
    assert data["proxy"]["last_activity"] is not None
    metrics = await (await client.get("/metrics")).text()
    assert 'aikore_route_requests_total{route="web"}' in metrics

    async with client.ws_connect("/app/web/ws") as ws:
        await ws.send_str("through aikore")
        assert (await ws.receive()).data == "through aikore"

    assert (await client.post(f"/api/instances/{created['id']}/stop")).status == 200
    await _wait_status(client, created["id"], "stopped")
    resp = await client.get("/app/web/info")
    assert resp.status == 503
    assert (await client.delete(f"/api/instances/{created['id']}")).status in (200, 204)
    resp = await client.get("/app/web/info")
    assert resp.status == 404


async def test_new_instance_json_has_zero_proxy_counters(client: TestClient) -> None:
    created = await _create(client, name="quiet")
    document = await (await client.get("/api/openapi.json")).json()
    jsonschema.validate(created["proxy"], document["components"]["schemas"]["Instance"]["properties"]["proxy"])
    assert created["proxy"] == {
        "requests": 0,
        "bytes_in": 0,
        "bytes_out": 0,
        "open_websockets": 0,
        "last_activity": None,
    }


async def test_public_port_opens_with_the_instance_and_closes_when_it_stops(client: TestClient) -> None:
    settings = client.app[SETTINGS]
    port = next(p for p in settings.public_ports if _port_free(p))
    created = await _create(client, name="pub", public_port=port)
    assert (await client.post(f"/api/instances/{created['id']}/start")).status == 200
    await _wait_status(client, created["id"], "running")

    async def served() -> dict[str, Any] | None:
        try:
            async with aiohttp.ClientSession() as browser, browser.get(f"http://127.0.0.1:{port}/info") as resp:
                return await resp.json() if resp.status == 200 else None
        except aiohttp.ClientConnectionError:
            return None

    info = await until(served, what="the public port to forward")
    assert info["path"] == "/info"
    assert "X-Forwarded-Prefix" not in info["headers"]

    assert (await client.post(f"/api/instances/{created['id']}/stop")).status == 200
    await _wait_status(client, created["id"], "stopped")

    await until(lambda: _port_free(port), what="the public port to close")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
