"""Without auth, a loopback AiKore answers only to loopback Host names (DNS rebinding)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiohttp.test_utils import TestClient


@pytest.mark.parametrize("host", ["evil.example", "evil.example:9000", "192.168.1.10:9000", "localhost.evil.example"])
async def test_foreign_host_is_refused_without_auth(make_client: Callable[..., TestClient], host: str) -> None:
    client = await make_client(auth="none", token=None)
    resp = await client.get("/api/instances", headers={"Host": host})
    assert resp.status == 403
    assert "Host not allowed" in await resp.text()
    resp = await client.post("/api/instances", json={"name": "x", "blueprint": "demo"}, headers={"Host": host})
    assert resp.status == 403
    assert (await (await client.get("/api/instances")).json()) == []


@pytest.mark.parametrize("host", ["localhost:9000", "127.0.0.1:9000", "[::1]:9000", "app.localhost", "127.0.0.2"])
async def test_loopback_hosts_are_served_without_auth(make_client: Callable[..., TestClient], host: str) -> None:
    client = await make_client(auth="none", token=None)
    assert (await client.get("/api/instances", headers={"Host": host})).status == 200


async def test_token_mode_does_not_check_host(make_client: Callable[..., TestClient]) -> None:
    # With auth on, rebinding gains nothing (no credentials); reverse proxies may use any name.
    client = await make_client()
    resp = await client.get("/api/health", headers={"Host": "aikore.example.org"})
    assert resp.status == 200


async def test_non_loopback_bind_without_auth_serves_any_host(make_client: Callable[..., TestClient]) -> None:
    client = await make_client(auth="none", token=None, host="0.0.0.0")
    assert (await client.get("/api/instances", headers={"Host": "gpu-box.lan:9000"})).status == 200
