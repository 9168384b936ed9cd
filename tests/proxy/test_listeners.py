"""Public ports: a listener per instance, opened and closed at runtime, forwarding prefix-less."""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

import proxy
from tests.helpers import on_a_free_port

from .conftest import Proxied

GATE_HEADER = "X-Test-Key"


@web.middleware
async def _gate(request: web.Request, handler) -> web.StreamResponse:
    """Stand-in for AiKore's auth gate: it must run before any upgrade is accepted."""
    if request.headers.get(GATE_HEADER) != "open-sesame":
        return web.Response(status=401, text="no")
    return await handler(request)


@pytest_asyncio.fixture
async def listeners(proxied: Proxied) -> AsyncIterator[proxy.PublicListeners]:
    public = proxy.PublicListeners(proxied.table, proxied.session, middlewares=[_gate], pool=proxied.pool)
    try:
        yield public
    finally:
        await public.close_all()


OPEN = {GATE_HEADER: "open-sesame"}


async def _refused(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as fresh, fresh.get(url):
            return False
    except aiohttp.ClientConnectorError:
        return True


async def test_public_port_forwards_every_path_without_a_prefix(
    proxied: Proxied, listeners: proxy.PublicListeners, client
) -> None:
    port = await on_a_free_port(lambda port: listeners.open("demo", port))
    async with client.get(f"http://127.0.0.1:{port}/echo/x?y=1", headers=OPEN) as resp:
        seen = await resp.json()
    assert seen["raw_path"] == "/echo/x?y=1"
    headers = {k.lower(): v for k, v in seen["headers"]}
    assert "x-forwarded-prefix" not in headers
    assert headers["host"] == f"127.0.0.1:{port}"


async def test_public_port_serves_port_only_instances(
    proxied: Proxied, listeners: proxy.PublicListeners, client
) -> None:
    proxied.table.set("demo", port=proxied.upstream.port, mode="port-only", state="running")
    port = await on_a_free_port(lambda port: listeners.open("demo", port))
    async with client.get(
        f"http://127.0.0.1:{port}/redirect", params={"to": "/x"}, headers=OPEN, allow_redirects=False
    ) as resp:
        assert resp.status == 302
        assert resp.headers["Location"] == "/x"


async def test_middlewares_gate_http_and_websocket_upgrades(
    proxied: Proxied, listeners: proxy.PublicListeners, client
) -> None:
    port = await on_a_free_port(lambda port: listeners.open("demo", port))
    async with client.get(f"http://127.0.0.1:{port}/echo/") as resp:
        assert resp.status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(f"ws://127.0.0.1:{port}/ws")
    assert refused.value.status == 401
    async with client.ws_connect(f"ws://127.0.0.1:{port}/ws", headers=OPEN) as ws:
        await ws.send_str("hi")
        assert (await ws.receive()).data == "hi"


async def test_sync_opens_for_live_routes_and_closes_when_they_stop(
    proxied: Proxied, listeners: proxy.PublicListeners, client
) -> None:

    async def publish(port: int) -> None:
        proxied.table.set("demo", port=proxied.upstream.port, state="starting", public_port=port)
        await listeners.sync()
        if "demo" not in listeners.ports:  # sync logs and skips a port taken meanwhile
            raise OSError(errno.EADDRINUSE, f"sync did not open port {port}")

    port = await on_a_free_port(publish)
    assert listeners.ports == {"demo": port}
    async with client.get(f"http://127.0.0.1:{port}/echo/", headers=OPEN) as resp:
        assert resp.status == 200
    proxied.table.set("demo", port=None, state="stopped", public_port=port)
    await listeners.sync()
    assert listeners.ports == {}
    assert await _refused(f"http://127.0.0.1:{port}/echo/")


async def test_stopped_instance_on_its_public_port_is_a_503(
    proxied: Proxied, listeners: proxy.PublicListeners, client
) -> None:
    port = await on_a_free_port(lambda port: listeners.open("demo", port))
    proxied.table.set("demo", port=None, state="stopping")
    async with client.get(f"http://127.0.0.1:{port}/", headers=OPEN) as resp:
        assert resp.status == 503


async def test_a_port_in_use_is_reported_by_open_and_skipped_by_sync(
    proxied: Proxied, listeners: proxy.PublicListeners
) -> None:
    taken = proxied.upstream.port
    with pytest.raises(OSError):
        await listeners.open("demo", taken)
    proxied.table.set("demo", port=proxied.upstream.port, state="running", public_port=taken)
    await listeners.sync()
    assert listeners.ports == {}
