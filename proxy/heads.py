"""Request heads: how much and how long a connection may send before it has made a request.

Nothing is authenticated before a request's head is complete, so a head is all an anonymous
client can make a server hold. aiohttp bounds each header line and the number of headers, but
not their total, and gives a head no deadline: ten connections of 250 unfinished 60 KB headers
held hundreds of megabytes, and a head trickled a byte at a time stayed open indefinitely.

:class:`HeadGuard` sits in front of aiohttp's request handler on each connection and closes one
whose current head has not completed ``timeout`` seconds after it began (a fresh connection's
first head begins when it connects; a kept-alive one's next head with its first byte), or has
grown past ``max_head`` bytes. Once a head is complete nothing is watched: bodies, streams and
websockets run as long as they need. :class:`GuardedRunner` is ``web.AppRunner`` with the guard.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

# The request line, the headers and their line ends together. Browsers cap one cookie at 4 KB and
# servers commonly a whole head at 8-32 KB; this leaves room for a Cookie line of many apps'
# cookies on one host (up to aiohttp's 64 KiB per field) and every other header a browser sends.
MAX_HEAD = 128 * 1024
# Seconds a request head may take from its start to its blank line, however slowly it trickles.
HEAD_TIMEOUT = 30.0

_TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
_TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


class HeadGuard(asyncio.Protocol):
    """aiohttp's RequestHandler for one connection, with a size bound and a deadline on each head."""

    def __init__(self, handler: RequestHandler, *, timeout: float = HEAD_TIMEOUT, max_head: int = MAX_HEAD) -> None:
        self._handler = handler
        self._timeout = timeout
        self._max_head = max_head
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        # Bytes of the head being read (0 between requests and while one is being handled).
        self._head = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._handler.connection_made(transport)
        # A connection that never completes its first head is dropped too (nothing sent at all).
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._transport = None
        self._handler.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        self._handler.data_received(data)
        if not self._reading_head():
            # The head is complete (or a request is being handled): nothing to watch until the next.
            self._head = 0
            self._disarm()
            return
        self._head += len(data)
        if self._head > self._max_head:
            self._refuse(_TOO_LARGE)
        elif self._timer is None:
            self._arm()

    def eof_received(self) -> bool | None:
        return self._handler.eof_received()

    def pause_writing(self) -> None:
        self._handler.pause_writing()

    def resume_writing(self) -> None:
        self._handler.resume_writing()

    def _reading_head(self) -> bool:
        """aiohttp's handler is waiting for a request: what arrives now is (part of) a head."""
        # The handler's own test for "idle" (its keep-alive check): a pending waiter. Before its
        # task first runs there is none yet, and no request has been parsed either.
        handler = self._handler
        waiter = handler._waiter
        if waiter is not None:
            return not waiter.done()
        return handler._request_count == 0 and not handler._messages

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._timeout, self._expire)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if self._transport is None or not self._reading_head():
            return
        if self._head:
            self._refuse(_TIMED_OUT)
        else:
            self._transport.close()

    def _refuse(self, answer: bytes) -> None:
        """Answer for aiohttp (which never saw a whole request) and close; what it buffered goes with it."""
        self._disarm()
        transport = self._transport
        if transport is not None:
            transport.write(answer)
            transport.close()


class _GuardedServer:
    """Stands for aiohttp's ``web.Server``: each connection's protocol is its handler behind a HeadGuard."""

    def __init__(self, server: web.Server, timeout: float, max_head: int) -> None:
        self._server = server
        self._timeout = timeout
        self._max_head = max_head

    def __call__(self) -> HeadGuard:
        return HeadGuard(self._server(), timeout=self._timeout, max_head=self._max_head)

    def __getattr__(self, name: str) -> Any:
        # Shutdown, connections and the rest are the real server's.
        return getattr(self._server, name)


class GuardedRunner(web.AppRunner):
    """``web.AppRunner`` whose connections get a :class:`HeadGuard` (``head_timeout``, ``max_head``)."""

    def __init__(
        self, app: web.Application, *, head_timeout: float = HEAD_TIMEOUT, max_head: int = MAX_HEAD, **kwargs: Any
    ) -> None:
        super().__init__(app, **kwargs)
        self._head_limits = (head_timeout, max_head)

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        return _GuardedServer(server, *self._head_limits)  # type: ignore[return-value]
