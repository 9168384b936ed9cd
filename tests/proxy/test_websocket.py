"""Websocket forwarding against a real upstream (PROXY.md items 21-23)."""

from __future__ import annotations

import os

import aiohttp
import pytest
from aiohttp import WSMsgType

import proxy.websocket
from tests.helpers import until

from .conftest import Proxied


def _ws_url(proxied: Proxied, path: str) -> str:
    return proxied.app_url("demo", path).replace("http://", "ws://", 1)


async def test_text_and_binary_frames_round_trip(proxied: Proxied, client) -> None:
    async with client.ws_connect(_ws_url(proxied, "/ws")) as ws:
        await ws.send_str("héllo")
        assert (await ws.receive()).data == "héllo"
        await ws.send_bytes(b"\x00\x01\xff")
        msg = await ws.receive()
        assert msg.type is WSMsgType.BINARY
        assert msg.data == b"\x00\x01\xff"


@pytest.mark.parametrize("kind", ["text", "binary"])
async def test_eight_megabyte_frames_pass_both_ways(proxied: Proxied, client, kind: str) -> None:
    payload = os.urandom(8 * 1024 * 1024)
    async with client.ws_connect(_ws_url(proxied, "/ws"), max_msg_size=0) as ws:
        if kind == "text":
            text = payload.hex()
            await ws.send_str(text)
            assert (await ws.receive(timeout=60)).data == text
        else:
            await ws.send_bytes(payload)
            assert (await ws.receive(timeout=60)).data == payload


async def test_subprotocol_is_the_one_the_upstream_chose(proxied: Proxied, client) -> None:
    async with client.ws_connect(_ws_url(proxied, "/ws"), protocols=("v9", "superchat", "chat")) as ws:
        assert ws.protocol == "superchat"
    async with client.ws_connect(_ws_url(proxied, "/ws"), protocols=("chat",)) as ws:
        assert ws.protocol == "chat"
    async with client.ws_connect(_ws_url(proxied, "/ws")) as ws:
        assert ws.protocol is None


async def test_handshake_headers_reach_the_upstream_without_the_browsers_key(proxied: Proxied, client) -> None:
    async with client.ws_connect(
        _ws_url(proxied, "/ws-headers"),
        headers={"Origin": "http://box.example", "Cookie": "s=1", "X-Forwarded-For": "6.6.6.6"},
    ) as ws:
        seen = {k.lower(): v for k, v in (await ws.receive_json())["headers"]}
    assert seen["origin"] == "http://box.example"
    assert seen["cookie"] == "s=1"
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-prefix"] == "/app/demo"
    assert seen["host"] == proxied.url.removeprefix("http://")
    # The upstream leg has its own key, not the browser's.
    assert seen["sec-websocket-key"]


async def test_upstream_close_code_and_reason_reach_the_browser(proxied: Proxied, client) -> None:
    async with client.ws_connect(_ws_url(proxied, "/ws")) as ws:
        await ws.send_str("!close 4001 bye now")
        msg = await ws.receive()
        assert msg.type is WSMsgType.CLOSE
        assert msg.data == 4001
        assert msg.extra == "bye now"


async def test_browser_close_code_and_reason_reach_the_upstream(proxied: Proxied, client) -> None:
    async with client.ws_connect(_ws_url(proxied, "/ws")) as ws:
        await ws.send_str("ping")
        await ws.receive()
        await ws.close(code=4002, message=b"later")
    async with client.get(proxied.app_url("demo", "/closes")) as resp:
        closes = await resp.json()
    assert closes == [[4002, "later"]]


async def test_upstream_refusing_the_handshake_gets_its_status_not_a_101(proxied: Proxied, client) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(_ws_url(proxied, "/ws-refused"))
    assert refused.value.status == 403
    async with client.get(
        proxied.app_url("demo", "/ws-refused"),
        headers={
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
        },
    ) as resp:
        assert resp.status == 403
        assert "<script>" not in await resp.text()


async def test_open_websockets_and_bytes_are_counted(proxied: Proxied, client) -> None:
    route = proxied.table.get("demo")
    assert route is not None
    async with client.ws_connect(_ws_url(proxied, "/ws")) as ws:
        await until(lambda: route.open_websockets == 1, what="the websocket to be counted open")
        before = route.last_activity
        await ws.send_bytes(b"x" * 1000)
        await ws.receive()
        assert route.bytes_in >= 1000
        assert route.bytes_out >= 1000
        assert route.last_activity is not None and before is not None and route.last_activity >= before
    await until(lambda: route.open_websockets == 0, what="the websocket to be counted closed")


async def test_heartbeat_pings_the_browser(proxied: Proxied, client, monkeypatch) -> None:
    monkeypatch.setattr(proxy.websocket, "HEARTBEAT", 0.2)
    async with client.ws_connect(_ws_url(proxied, "/ws"), autoping=False) as ws:
        msg = await ws.receive(timeout=30)
        assert msg.type is WSMsgType.PING


async def test_upstream_dying_closes_the_browser_side(proxied: Proxied, client) -> None:
    async with client.ws_connect(_ws_url(proxied, "/ws")) as ws:
        await ws.send_str("ping")
        await ws.receive()
        await ws.send_str("!die")
        msg = await ws.receive(timeout=10)
        assert msg.type is WSMsgType.CLOSE
        assert msg.data == aiohttp.WSCloseCode.GOING_AWAY
