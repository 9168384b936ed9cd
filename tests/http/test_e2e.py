"""End to end: a real aikore with a running demo instance; its /app path and public port are gated."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
import pytest

from aikore.http.sessions import COOKIE_NAME
from tests.helpers import AikoreProcess, free_port, wait_until

TOKEN = "e2e-token-0123456789abcdef"


@pytest.fixture
def running_demo(aikore_process: Callable[..., AikoreProcess]) -> tuple[AikoreProcess, str, int]:
    public_port = free_port()
    proc = aikore_process(extra_args=["--token", TOKEN, "--public-ports", f"{public_port}-{public_port}"])
    proc.token = TOKEN
    created = proc.request("POST", "/api/instances", {"name": "gated", "blueprint": "demo",
                                                      "public_port": public_port})
    assert created.status == 201, created.body
    iid = created.json()["id"]
    assert proc.request("POST", f"/api/instances/{iid}/start").status in (200, 202)
    wait_until(lambda: proc.request("GET", f"/api/instances/{iid}").json()["status"] == "running", timeout=60,
               what="the demo instance to run")
    wait_until(lambda: proc.request("GET", "/app/gated/health").status == 200, what="the /app route")
    return proc, "gated", public_port


async def _ws_status(url: str, headers: dict[str, str] | None = None, origin: str | None = None) -> int:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        try:
            async with http.ws_connect(url, headers=headers or {}, origin=origin) as ws:
                await ws.send_str("ping")
                assert await ws.receive_str(timeout=30) == "ping"
                return 101
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


def test_websockets_on_app_and_public_port_need_credentials(running_demo: tuple[AikoreProcess, str, int]) -> None:
    proc, name, public_port = running_demo
    app_ws = f"{proc.base}/app/{name}/ws"
    port_ws = f"http://127.0.0.1:{public_port}/ws"
    wait_until(lambda: asyncio.run(_ws_status(port_ws, {"Authorization": f"Bearer {TOKEN}"})) == 101,
               what="the public port to forward")
    for url in (app_ws, port_ws):
        assert asyncio.run(_ws_status(url)) == 401, url
        assert asyncio.run(_ws_status(url, {"Authorization": "Bearer wrong"})) == 401, url
        assert asyncio.run(_ws_status(url, {"Authorization": f"Bearer {TOKEN}"})) == 101, url


def test_public_port_page_cannot_use_the_cookie_against_the_api(running_demo: tuple[AikoreProcess, str, int]) -> None:
    proc, name, public_port = running_demo
    login = proc.request("POST", "/api/auth/login", {"token": TOKEN}, auth=False)
    assert login.headers["Set-Cookie"].startswith(f"{COOKIE_NAME}=")
    cookie = {"Cookie": login.headers["Set-Cookie"].split(";")[0]}
    evil = {**cookie, "Origin": f"http://127.0.0.1:{public_port}"}
    assert proc.request("POST", "/api/instances/1/stop", headers=evil, auth=False).status == 403
    assert proc.request("DELETE", "/api/instances/1", headers=evil, auth=False).status == 403
    assert proc.request("GET", "/api/instances/1", auth=True).json()["status"] == "running"
    # Another port of the same host (another instance's public port, say) is another origin.
    foreign = f"http://127.0.0.1:{public_port + 1}"
    assert asyncio.run(_ws_status(f"{proc.base}/app/{name}/ws", cookie, origin=foreign)) == 403
    assert asyncio.run(_ws_status(f"{proc.base}/app/{name}/ws", cookie, origin=proc.base)) == 101
    # The instance's own public port serves the same app: its pages may use /app/<name>/ too.
    own = f"http://127.0.0.1:{public_port}"
    assert asyncio.run(_ws_status(f"{proc.base}/app/{name}/ws", cookie, origin=own)) == 101
