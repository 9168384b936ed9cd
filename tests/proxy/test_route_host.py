"""A route whose app listens on another host (a cluster node): forwarded there, redirects mounted."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp.test_utils import TestServer

import proxy

from .conftest import Proxied
from .upstream import make_upstream

# Linux routes all of 127.0.0.0/8 to loopback: this address stands for a node.
NODE = "127.0.0.3"


async def test_route_with_a_host_forwards_there_and_mounts_its_redirects(
    proxied: Proxied, client, aiohttp_server: Callable[..., TestServer]
) -> None:
    on_node = await aiohttp_server(make_upstream(), host=NODE, **proxy.SERVER_HANDLER_ARGS)
    proxied.table.set("remote", port=on_node.port, state="running", host=NODE)
    url = proxied.app_url("remote", "/redirect")
    target = f"http://{NODE}:{on_node.port}/next?a=1"
    async with client.get(url, params={"to": target}, allow_redirects=False) as resp:
        assert resp.status == 302
        assert resp.headers["Location"] == "/app/remote/next?a=1"
    # Without the host, the same port on 127.0.0.1 has nothing listening: the host is what reached it.
    proxied.table.set("remote", port=on_node.port, state="running")
    async with client.get(url, params={"to": target}, allow_redirects=False) as resp:
        assert resp.status == 502
