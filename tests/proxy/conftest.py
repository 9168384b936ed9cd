"""Fixtures: a real upstream app and the proxy, each on its own socket."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

import proxy

from .upstream import make_upstream

__all__ = ["Proxied", "routed_app"]


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


@pytest_asyncio.fixture
async def upstream(aiohttp_server: Callable[..., TestServer]) -> TestServer:
    # The upstream accepts big headers too, so any limit hit is the proxy's own.
    return await aiohttp_server(make_upstream(), **proxy.SERVER_HANDLER_ARGS)


@contextlib.asynccontextmanager
async def routed_app(
    upstream: TestServer,
) -> AsyncIterator[tuple[web.Application, proxy.RouteTable, aiohttp.ClientSession, proxy.UpstreamPool]]:
    """An app with the /app/ routes over a table holding "demo" → upstream; closed afterwards."""
    table = proxy.RouteTable()
    table.set("demo", port=upstream.port, state="running")
    session = proxy.client_session()
    pool = proxy.UpstreamPool()
    app = web.Application()
    proxy.add_app_routes(app.router, proxy.path_handler(table, session, pool=pool))
    try:
        yield app, table, session, pool
    finally:
        await pool.close()
        await session.close()


@pytest_asyncio.fixture
async def proxied(aiohttp_server: Callable[..., TestServer], upstream: TestServer) -> AsyncIterator[Proxied]:
    async with routed_app(upstream) as (app, table, session, pool):
        server = await aiohttp_server(app, **proxy.SERVER_HANDLER_ARGS)
        yield Proxied(str(server.make_url("")).rstrip("/"), table, upstream, session, pool)


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
