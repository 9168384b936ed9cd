"""A real server with the proxy fast path in front of a real aiohttp app, on a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from multidict import CIMultiDictProxy

import proxy
from proxy.fastpath import AcceptFn, Decision, FastPath


def accept_all(headers: CIMultiDictProxy[str], method: str, target: str, address: str) -> Decision:
    """An accept callback for a proxy without auth: every plain request may take the fast path."""
    return Decision(headers)


@asynccontextmanager
async def fastpath_server(
    app: web.Application, table: proxy.RouteTable, pool: proxy.UpstreamPool, accept: AcceptFn = accept_all
) -> AsyncIterator[tuple[str, FastPath]]:
    """Serve ``app`` behind a FastPath on 127.0.0.1; yields the base URL and the FastPath."""
    runner = web.AppRunner(app, access_log=None, **proxy.SERVER_HANDLER_ARGS)
    await runner.setup()
    assert runner.server is not None
    fast = FastPath(table, pool, runner.server, accept)
    server = await asyncio.get_running_loop().create_server(fast, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", fast
    finally:
        server.close()
        fast.close_connections()
        await runner.cleanup()
