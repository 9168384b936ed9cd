"""RouteTable: in-memory changes take effect on the next request; counters survive restarts."""

from __future__ import annotations

import time

import pytest

import proxy

from .conftest import Proxied


def test_set_updates_in_place_and_keeps_counters() -> None:
    table = proxy.RouteTable()
    route = table.set("a", port=1234, state="running")
    route.requests = 5
    again = table.set("a", port=None, state="stopped")
    assert again is route
    assert again.requests == 5
    assert again.port is None
    assert not again.live


def test_unknown_mode_is_rejected_naming_the_value() -> None:
    with pytest.raises(ValueError, match="sideways"):
        proxy.RouteTable().set("a", port=1, mode="sideways", state="running")


def test_snapshot_is_json_ready_with_null_last_activity() -> None:
    table = proxy.RouteTable()
    table.set("a", port=1, mode="keep-prefix", state="starting", public_port=19001)
    assert table.snapshot() == {
        "a": {
            "name": "a",
            "port": 1,
            "mode": "keep-prefix",
            "state": "starting",
            "public_port": 19001,
            "requests": 0,
            "bytes_in": 0,
            "bytes_out": 0,
            "open_websockets": 0,
            "last_activity": None,
        }
    }


def test_remove_forgets_the_route() -> None:
    table = proxy.RouteTable()
    table.set("a", port=1, state="running")
    assert table.remove("a") is not None
    assert table.get("a") is None
    assert table.remove("a") is None


async def test_a_changed_port_is_used_by_the_next_request(proxied: Proxied, client, aiohttp_server) -> None:
    from .upstream import make_upstream

    second = await aiohttp_server(make_upstream())
    proxied.table.set("demo", port=second.port, state="running")
    async with client.get(proxied.app_url("demo", "/echo/")) as resp:
        assert resp.status == 200
    await second.close()
    async with client.get(proxied.app_url("demo", "/echo/")) as resp:
        assert resp.status == 502


async def test_requests_and_bytes_are_counted(proxied: Proxied, client) -> None:
    route = proxied.table.get("demo")
    assert route is not None
    started = time.time()
    async with client.post(proxied.app_url("demo", "/upload"), data=b"u" * 100_000) as resp:
        await resp.read()
    async with client.get(proxied.app_url("demo", "/download"), params={"size": 200_000}) as resp:
        await resp.read()
    async with client.get(proxied.app_url("demo", "/echo/")) as resp:
        small = len(await resp.read())
    assert route.requests == 3
    assert route.bytes_in == 100_000
    assert route.bytes_out >= 200_000 + small
    assert route.last_activity is not None and route.last_activity >= started
