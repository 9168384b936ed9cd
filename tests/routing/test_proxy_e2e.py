"""End to end: a real `aikore` process proxies a real demo instance started through its API."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from yarl import URL

from tests.helpers import AikoreProcess, wait_until

TOKEN = "proxy-e2e-token-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def aikore(aikore_process: Callable[..., AikoreProcess]) -> AikoreProcess:
    server = aikore_process(extra_args=["--token", TOKEN])
    server.token = TOKEN
    return server


def _start_demo(server: AikoreProcess, name: str, **fields: Any) -> dict[str, Any]:
    created = server.request("POST", "/api/instances", {"name": name, "blueprint": "demo", **fields})
    assert created.status == 201, created.body
    instance_id = created.json()["id"]
    assert server.request("POST", f"/api/instances/{instance_id}/start").status == 200

    def running() -> dict[str, Any] | None:
        data = server.request("GET", f"/api/instances/{instance_id}").json()
        assert data["status"] != "error", data
        return data if data["status"] == "running" else None

    return wait_until(running, timeout=60, what=f"{name} to run")


async def test_demo_app_through_aikore_http_sse_upload_and_websocket(aikore: AikoreProcess) -> None:
    _start_demo(aikore, "demo1")
    base = aikore.base
    async with aiohttp.ClientSession(headers=BEARER) as browser:
        async with browser.get(f"{base}/app/demo1/") as resp:
            assert resp.status == 200
            assert "demo1" in await resp.text()
        async with browser.get(URL(f"{base}/app/demo1/info?a=1&b=%2F", encoded=True)) as resp:
            info = await resp.json()
        assert info["path"] == "/info?a=1&b=%2F"
        assert info["headers"]["X-Forwarded-Prefix"] == "/app/demo1"
        assert info["headers"]["Host"] == f"127.0.0.1:{aikore.port}"
        # AiKore's own credentials stop at the gate; the app never sees them.
        assert "Authorization" not in info["headers"]

        started = time.monotonic()
        async with browser.get(f"{base}/app/demo1/events", params={"count": "3", "interval": "0.3"}) as resp:
            first = await resp.content.readuntil(b"\n\n")
            # Unbuffered: the first tick arrives long before the stream's 0.9 s are over.
            assert time.monotonic() - started < 0.8 or b"tick 1" in first
            rest = await resp.read()
        assert b"tick 1" in first and b"tick 3" in rest

        body = os.urandom(24 * 1024 * 1024)
        async with browser.post(f"{base}/app/demo1/upload", data=body) as resp:
            answer = await resp.json()
        assert answer == {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}

        ws_url = f"{base}/app/demo1/ws".replace("http://", "ws://")
        async with browser.ws_connect(ws_url, max_msg_size=0) as ws:
            frame = os.urandom(8 * 1024 * 1024)
            await ws.send_bytes(frame)
            assert (await ws.receive(timeout=60)).data == frame
            await ws.send_str("text frame")
            assert (await ws.receive()).data == "text frame"

    demo = next(i for i in aikore.request("GET", "/api/instances").json() if i["name"] == "demo1")
    assert demo["proxy"]["requests"] >= 5
    assert demo["proxy"]["bytes_in"] >= 24 * 1024 * 1024
    metrics = aikore.request("GET", "/metrics").body.decode()
    assert 'aikore_route_requests_total{route="demo1"}' in metrics


async def test_gate_runs_before_the_proxy_for_http_and_upgrades(aikore: AikoreProcess) -> None:
    _start_demo(aikore, "gated")
    url = f"{aikore.base}/app/gated/ws"
    async with aiohttp.ClientSession() as stranger:
        async with stranger.get(f"{aikore.base}/app/gated/info", headers={"Accept": "application/json"}) as resp:
            assert resp.status == 401
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await stranger.ws_connect(url.replace("http://", "ws://"))
        assert refused.value.status == 401


async def test_stopped_unknown_and_public_port(aikore: AikoreProcess) -> None:
    port = 19017
    data = _start_demo(aikore, "pub", public_port=port)
    async with aiohttp.ClientSession() as stranger:
        # The public port runs the same auth gate as the main port, websocket upgrades included.
        async with stranger.get(f"http://127.0.0.1:{port}/info", headers={"Accept": "application/json"}) as resp:
            assert resp.status == 401
        # A browser is sent to the login of AiKore's main port - the one really bound (this aikore
        # runs with --port 0, so the settings alone would have named port 0).
        async with stranger.get(f"http://127.0.0.1:{port}/page", headers={"Accept": "text/html"},
                                allow_redirects=False) as resp:
            assert resp.status == 302
            assert resp.headers["Location"].startswith(f"http://127.0.0.1:{aikore.port}/login?next="), resp.headers
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await stranger.ws_connect(f"ws://127.0.0.1:{port}/ws")
        assert refused.value.status == 401
    async with aiohttp.ClientSession(headers=BEARER) as browser:
        async with browser.get(f"http://127.0.0.1:{port}/info") as resp:
            assert resp.status == 200
            assert (await resp.json())["path"] == "/info"
        async with browser.get(f"{aikore.base}/app/nobody/") as resp:
            assert resp.status == 404
        assert aikore.request("POST", f"/api/instances/{data['id']}/stop").status == 200
        wait_until(
            lambda: aikore.request("GET", f"/api/instances/{data['id']}").json()["status"] == "stopped",
            timeout=60,
            what="pub to stop",
        )
        async with browser.get(f"{aikore.base}/app/pub/") as resp:
            assert resp.status == 503
            assert "not running" in await resp.text()
        with pytest.raises(aiohttp.ClientConnectionError):
            async with browser.get(f"http://127.0.0.1:{port}/info"):
                pass
