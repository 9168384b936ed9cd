"""Every HTTP forwarding test of test_http.py again, with the fast path in front of the proxy.

The fixture below replaces conftest's ``proxied``: the same route table, upstream and pool, but
the main port is a FastPath whose accept callback admits everything, so each plain request the
tests send is forwarded by proxy/fastpath.py and everything else is handed to aiohttp.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest_asyncio
from aiohttp.test_utils import TestServer

from .conftest import Proxied, routed_app
from .fastpath_server import fastpath_server
from .test_http import *  # noqa: F403  (the very same tests, collected again here)


@pytest_asyncio.fixture
async def proxied(aiohttp_server: Callable[..., TestServer], upstream: TestServer) -> AsyncIterator[Proxied]:
    async with routed_app(upstream) as (app, table, session, pool), fastpath_server(app, table, pool) as (url, _):
        yield Proxied(url, table, upstream, session, pool)
