"""Websocket forwarding: handshake upstream first, then relay frames and closes both ways."""

from __future__ import annotations

import asyncio
import time

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web
from yarl import URL

from . import pages
from .headers import PeerInfo, Scrub, upstream_request_headers
from .table import STARTING, Route

# Reaps browsers that vanished without a close (laptop lid shut, network gone).
HEARTBEAT = 30.0

# Close codes that must never be sent on the wire (RFC 6455 7.4.1); they describe a close
# that carried no code or no close frame at all.
_UNSENDABLE = frozenset({0, 1005, 1006, 1015})


def is_upgrade(request: web.Request) -> bool:
    """True for a websocket handshake."""
    return request.method == "GET" and request.headers.get("Upgrade", "").lower() == "websocket"


def _offered_protocols(request: web.Request) -> list[str]:
    return [
        p.strip()
        for value in request.headers.getall("Sec-WebSocket-Protocol", ())
        for p in value.split(",")
        if p.strip()
    ]


async def forward_websocket(
    request: web.Request,
    session: aiohttp.ClientSession,
    route: Route,
    url: URL,
    *,
    peer: PeerInfo,
    prefix: str,
    scrub: Scrub | None = None,
) -> web.StreamResponse:
    """Connect to the app first; accept the browser only once the app has accepted us."""
    if not web.WebSocketResponse().can_prepare(request).ok:
        # Refused before the app is contacted: no upstream connection for a handshake that
        # could never complete (Upgrade without Connection: upgrade, a bad key or version).
        return pages.bad_websocket_handshake()
    route.requests += 1
    route.last_activity = time.time()
    headers = upstream_request_headers(
        request.headers,
        peer=peer,
        prefix=prefix,
        websocket=True,
        scrub=scrub,
    )
    try:
        upstream = await session.ws_connect(
            url.with_scheme("ws"),
            headers=headers,
            protocols=_offered_protocols(request),
            max_msg_size=0,
            compress=0,
            autoclose=False,
            autoping=True,
        )
    except aiohttp.WSServerHandshakeError as exc:
        # Answer with the app's refusal rather than accepting and closing at once.
        return pages.upstream_status(exc.status if exc.status >= 400 else 502)
    except aiohttp.ClientConnectorError:
        if route.state == STARTING:
            return pages.starting(route, pages.dashboard_for(prefix))
        return pages.bad_gateway()
    except aiohttp.ClientError:
        return pages.bad_gateway()
    async with upstream:
        browser = web.WebSocketResponse(
            protocols=(upstream.protocol,) if upstream.protocol else (),
            max_msg_size=0,
            heartbeat=HEARTBEAT,
            autoclose=False,
            autoping=True,
            compress=False,
        )
        await browser.prepare(request)
        route.open_websockets += 1
        try:
            await _relay(browser, upstream, route)
        finally:
            route.open_websockets -= 1
    return browser


async def _relay(browser: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse, route: Route) -> None:
    to_app = asyncio.create_task(_pump(browser, upstream, route, inbound=True))
    to_browser = asyncio.create_task(_pump(upstream, browser, route, inbound=False))
    try:
        await asyncio.wait((to_app, to_browser), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (to_app, to_browser):
            task.cancel()
        await asyncio.gather(to_app, to_browser, return_exceptions=True)
        # Whatever ended the relay, neither side is left open.
        await asyncio.gather(
            browser.close(code=WSCloseCode.GOING_AWAY),
            upstream.close(code=WSCloseCode.GOING_AWAY),
            return_exceptions=True,
        )


_Socket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


async def _pump(source: _Socket, sink: _Socket, route: Route, *, inbound: bool) -> None:
    """Copy frames until a close; forward the close with its code and reason."""
    while True:
        msg = await source.receive()
        if msg.type is WSMsgType.TEXT:
            size = len(msg.data)
            await sink.send_str(msg.data)
        elif msg.type is WSMsgType.BINARY:
            size = len(msg.data)
            await sink.send_bytes(msg.data)
        elif msg.type is WSMsgType.CLOSE:
            code = msg.data if msg.data not in _UNSENDABLE else WSCloseCode.OK
            reason = (msg.extra or "").encode()
            # Complete the handshake with the closing side, then pass it on.
            await asyncio.gather(
                sink.close(code=code, message=reason),
                source.close(code=code, message=reason),
                return_exceptions=True,
            )
            return
        elif msg.type in (WSMsgType.PING, WSMsgType.PONG):
            continue
        else:
            # CLOSING, CLOSED or ERROR: the source is gone without a usable close frame.
            await sink.close(code=WSCloseCode.GOING_AWAY)
            return
        if inbound:
            route.bytes_in += size
        else:
            route.bytes_out += size
        route.last_activity = time.time()
