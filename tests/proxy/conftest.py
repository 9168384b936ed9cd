"""Fixtures: a real upstream app and the proxy, each on its own socket."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

import proxy

from .upstream import make_upstream


@dataclass
class Proxied:
    """The proxy under test and what it forwards to."""

    url: str  # base URL of the proxy's main port
    table: proxy.RouteTable
    upstream: TestServer
    session: aiohttp.ClientSession
    pool: proxy.UpstreamPool

    def app_url(self, name: str, path: str = "/") -> str:
        return f"{self.url}/app/{name}{path}"


def free_port() -> int:
    """A port nobody listens on right now (for refused-connection and listener tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest_asyncio.fixture
async def upstream(aiohttp_server: Callable[..., TestServer]) -> TestServer:
    # The upstream accepts big headers too, so any limit hit is the proxy's own.
    return await aiohttp_server(make_upstream(), **proxy.SERVER_HANDLER_ARGS)


@pytest_asyncio.fixture
async def proxied(aiohttp_server: Callable[..., TestServer], upstream: TestServer) -> AsyncIterator[Proxied]:
    table = proxy.RouteTable()
    table.set("demo", port=upstream.port, state="running")
    session = proxy.client_session()
    pool = proxy.UpstreamPool()
    app = web.Application()
    proxy.add_app_routes(app.router, proxy.path_handler(table, session, pool=pool))
    server = await aiohttp_server(app, **proxy.SERVER_HANDLER_ARGS)
    try:
        yield Proxied(str(server.make_url("")).rstrip("/"), table, upstream, session, pool)
    finally:
        await pool.close()
        await session.close()


@pytest_asyncio.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser stand-in: no redirects followed by default, raw bodies, big headers allowed."""
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0),
        auto_decompress=False,
        max_line_size=65536,
        max_field_size=65536,
    ) as session:
        yield session


pytestmark = pytest.mark.asyncio
