"""The gate in front of proxied apps: /app/<name>/ and an instance's public port, HTTP and websockets.

A real upstream (the demo app) behind the real proxy package, with the gate as AiKore installs
it: on the main app for /app, and as the public-port listeners' middleware.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import DummyCookieJar, web
from aiohttp.test_utils import TestServer

import proxy
from aikore.config import Settings
from aikore.demo.app import create_demo_app
from aikore.http import Auth
from aikore.http.gate import gate
from aikore.http.sessions import COOKIE_NAME
from aikore.routing import scrub, scrub_middleware
from tests.helpers import free_port

from .conftest import TOKEN

WS_HEADERS = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
              "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


@dataclass
class Setup:
    main: str  # the AiKore port, where /app/demo/ lives
    public: str  # the demo instance's public port
    public_port: int
    dashboard_port: int
    http: aiohttp.ClientSession
    cookie: str


@pytest_asyncio.fixture
async def setup(aiohttp_server: Callable[..., TestServer], tmp_path: Path) -> AsyncIterator[Setup]:
    upstream = await aiohttp_server(create_demo_app())
    public_port = free_port()
    main_app = web.Application()
    main_server = TestServer(main_app, port=free_port())
    auth = Auth(Settings(data_dir=tmp_path, token=TOKEN, port=main_server.port or 0))
    auth.load()
    main_app.middlewares.append(gate(auth))
    # What aikore.routing provides: the instance's public port by its name.
    auth.public_port_of = lambda name: public_port if name == "demo" else None
    table = proxy.RouteTable()
    table.set("demo", port=upstream.port, state="running", public_port=public_port)
    session = proxy.client_session()
    forward = proxy.path_handler(table, session)

    async def main_port(request: web.Request) -> web.StreamResponse:
        scrub(request)  # as aikore/routing.py mounts it: the gate's findings go to the proxy
        return await forward(request)

    proxy.add_app_routes(main_app.router, main_port)
    await main_server.start_server()
    listeners = proxy.PublicListeners(table, session, middlewares=[gate(auth, public_port=True), scrub_middleware])
    await listeners.open("demo", public_port)
    http = aiohttp.ClientSession(cookie_jar=DummyCookieJar())
    try:
        yield Setup(f"http://127.0.0.1:{main_server.port}", f"http://127.0.0.1:{public_port}", public_port,
                    main_server.port or 0, http, auth.sessions.open().cookie)
    finally:
        await http.close()
        await listeners.close_all()
        await main_server.close()
        await session.close()


def _cookie(s: Setup, extra: str = "") -> dict[str, str]:
    return {"Cookie": f"{extra}{COOKIE_NAME}={s.cookie}"}


@pytest.mark.parametrize("where", ["main", "public"])
async def test_websocket_upgrade_without_credentials_is_401(setup: Setup, where: str) -> None:
    base = setup.main + "/app/demo" if where == "main" else setup.public
    async with setup.http.get(f"{base}/ws", headers=WS_HEADERS) as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await setup.http.ws_connect(f"{base}/ws")
    assert err.value.status == 401


@pytest.mark.parametrize("where", ["main", "public"])
async def test_websocket_with_a_wrong_token_is_401(setup: Setup, where: str) -> None:
    base = setup.main + "/app/demo" if where == "main" else setup.public
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await setup.http.ws_connect(f"{base}/ws", headers={"Authorization": "Bearer nope"})
    assert err.value.status == 401


@pytest.mark.parametrize("where", ["main", "public"])
async def test_websocket_with_the_bearer_token_reaches_the_app(setup: Setup, where: str) -> None:
    base = setup.main + "/app/demo" if where == "main" else setup.public
    async with setup.http.ws_connect(f"{base}/ws", headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
        await ws.send_str("hello")
        assert (await ws.receive_str()) == "hello"


async def test_app_websocket_with_the_cookie_works_only_from_the_dashboard_or_its_public_port(setup: Setup) -> None:
    url = f"{setup.main}/app/demo/ws"
    for origin in (setup.main, setup.public):
        async with setup.http.ws_connect(url, headers=_cookie(setup), origin=origin) as ws:
            await ws.send_str("ok")
            assert (await ws.receive_str()) == "ok"
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await setup.http.ws_connect(url, headers=_cookie(setup), origin=f"http://127.0.0.1:{setup.public_port + 1}")
    assert err.value.status == 403


async def test_public_port_websocket_with_the_cookie_needs_its_own_origin(setup: Setup) -> None:
    url = f"{setup.public}/ws"
    async with setup.http.ws_connect(url, headers=_cookie(setup), origin=setup.public) as ws:
        await ws.send_str("ok")
        assert (await ws.receive_str()) == "ok"
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await setup.http.ws_connect(url, headers=_cookie(setup), origin=setup.main)
    assert err.value.status == 403


@pytest.mark.parametrize("where", ["main", "public"])
async def test_http_without_credentials_is_refused(setup: Setup, where: str) -> None:
    base = setup.main + "/app/demo" if where == "main" else setup.public
    async with setup.http.get(f"{base}/info") as resp:
        assert resp.status == 401
    async with setup.http.post(f"{base}/upload", data=b"x" * 1000) as resp:
        assert resp.status == 401


async def test_public_port_page_sends_the_browser_to_the_dashboard_login(setup: Setup) -> None:
    async with setup.http.get(f"{setup.public}/some/page?q=1", headers={"Accept": "text/html"},
                              allow_redirects=False) as resp:
        assert resp.status == 302
        location = resp.headers["Location"]
    target = aiohttp.client.URL(location)
    assert (target.host, target.port, target.path) == ("127.0.0.1", setup.dashboard_port, "/login")
    assert target.query["next"] == f"{setup.public}/some/page?q=1"


async def test_public_port_token_url_sets_the_cookie_and_drops_the_token(setup: Setup) -> None:
    async with setup.http.get(f"{setup.public}/?token={TOKEN}&x=1", allow_redirects=False) as resp:
        assert resp.status == 302
        assert resp.headers["Location"] == "/?x=1"
        assert f"{COOKIE_NAME}=" in resp.headers["Set-Cookie"]


@pytest.mark.parametrize("where", ["main", "public"])
async def test_aikore_credentials_never_reach_the_app(setup: Setup, where: str) -> None:
    base = setup.main + "/app/demo" if where == "main" else setup.public
    headers = {**_cookie(setup, extra="theme=dark; "), "Authorization": f"Bearer {TOKEN}"}
    async with setup.http.get(f"{base}/info", headers=headers) as resp:
        assert resp.status == 200
        seen = (await resp.json())["headers"]
    assert seen.get("Cookie") == "theme=dark"
    assert "Authorization" not in seen
    assert setup.cookie not in str(seen) and TOKEN not in str(seen)


async def test_the_apps_own_authorization_is_passed_through(setup: Setup) -> None:
    headers = {**_cookie(setup), "Authorization": "token jupyter-own-token"}
    async with setup.http.get(f"{setup.main}/app/demo/info", headers=headers) as resp:
        assert resp.status == 200
        seen = (await resp.json())["headers"]
    assert seen["Authorization"] == "token jupyter-own-token"
    assert "Cookie" not in seen


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_cookie_state_changes_into_an_app_need_its_own_page(setup: Setup, method: str) -> None:
    other_port = f"http://127.0.0.1:{setup.public_port + 1}"
    cases = [
        (f"{setup.main}/app/demo/upload", setup.main, True),
        (f"{setup.main}/app/demo/upload", setup.public, True),
        (f"{setup.main}/app/demo/upload", other_port, False),
        (f"{setup.public}/upload", setup.public, True),
        (f"{setup.public}/upload", setup.main, False),
        (f"{setup.public}/upload", other_port, False),
    ]
    for url, origin, allowed in cases:
        async with setup.http.request(method, url, data=b"x" * 100,
                                      headers={**_cookie(setup), "Origin": origin}) as resp:
            # The demo app answers POST /upload, and 405 to the other methods: either way it was reached.
            reached = resp.status in (200, 405)
            assert reached == allowed, (method, url, origin, resp.status)
            if not allowed:
                assert resp.status == 403
