"""What a client claims never reaches the app as the proxy's word, and a bad handshake stays here.

Client-address headers (``X-Real-IP`` and friends, underscore spellings of ``X-Forwarded-*``) are
dropped like ``X-Forwarded-*``; an upgrade that is not a valid websocket handshake is answered 400
before anything is opened to the app.
"""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import proxy

from .conftest import Proxied

CLAIMS = {
    "X-Real-IP": "6.6.6.6",
    "True-Client-IP": "6.6.6.6",
    "X-Client-IP": "6.6.6.6",
    "Client-IP": "6.6.6.6",
    "Forwarded-For": "6.6.6.6",
    "Forwarded": "for=6.6.6.6",
    "X_Forwarded_For": "6.6.6.6",
    "X_Forwarded_Host": "evil.example",
    "X_FORWARDED_PROTO": "https",
    "x-forwarded-prefix": "/evil",
    "X-Forwarded-Port": "1",
}


async def test_client_address_claims_are_dropped(proxied: Proxied, client: aiohttp.ClientSession) -> None:
    async with client.get(proxied.app_url("demo", "/echo/x"), headers={**CLAIMS, "X-Keep": "1"}) as resp:
        assert resp.status == 200
        seen = {name.lower(): value for name, value in (await resp.json())["headers"]}
    assert seen["x-keep"] == "1"
    for name in CLAIMS:
        if name.lower() not in ("x-forwarded-prefix",):
            assert name.lower() not in seen, name
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-prefix"] == "/app/demo"
    assert "6.6.6.6" not in str(seen) and "evil" not in str(seen)


@pytest.mark.parametrize(
    "headers",
    [
        {"Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="},
        {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "x"},
        {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "12",
         "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="},
    ],
    ids=["no-connection-upgrade", "bad-key", "bad-version"],
)
async def test_a_bad_websocket_handshake_is_answered_before_the_app_is_contacted(
    aiohttp_server: Callable[..., TestServer], client: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    seen: list[str] = []

    async def ws(request: web.Request) -> web.StreamResponse:
        seen.append(request.path)
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.close()
        return socket

    app = web.Application()
    app.router.add_get("/ws", ws)
    upstream = await aiohttp_server(app)
    table = proxy.RouteTable()
    table.set("demo", port=upstream.port, state="running")
    session = proxy.client_session()
    try:
        front = web.Application()
        proxy.add_app_routes(front.router, proxy.path_handler(table, session))
        server = await aiohttp_server(front)
        async with client.get(f"http://127.0.0.1:{server.port}/app/demo/ws", headers=headers) as resp:
            assert resp.status == 400
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert seen == []
        assert upstream.handler is not None and upstream.handler.connections == []
        # A valid handshake still goes through.
        async with client.ws_connect(f"http://127.0.0.1:{server.port}/app/demo/ws") as socket:
            await socket.receive()
        assert seen == ["/ws"]
    finally:
        await session.close()
