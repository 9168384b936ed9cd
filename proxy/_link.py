"""Raw keep-alive connections from the fast path to upstream apps, driven by callbacks.

UpstreamPool's stream-based client costs a task, futures and a StreamReader per exchange; for the
fast path's common case (a request whose body is already in memory) this pool's links instead
parse the answer with httptools as bytes arrive and hand each piece straight to a Sink, the
browser's protocol, which writes it on. The browser's write buffer pauses the link's reading,
so a slow browser slows the app instead of filling memory.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, cast

import httptools

_IDLE_PER_TARGET = 256


class Sink(Protocol):
    """Who gets an exchange's answer, piece by piece."""

    def link_head(self, status: int, reason: str, names: list[bytes], values: list[bytes]) -> None: ...
    def link_body(self, data: bytes) -> None: ...
    def link_complete(self) -> None: ...
    def link_failed(self, answered: bool) -> None: ...


class Link(asyncio.Protocol):
    """One connection to one upstream; carries one exchange at a time."""

    def __init__(self, pool: LinkPool, key: tuple[str, int]) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.sink: Sink | None = None
        self.closed = False
        self.keep_alive = False
        self._parser = httptools.HttpResponseParser(self)
        self._reason = b""
        self._names: list[bytes] = []
        self._values: list[bytes] = []
        self._answered = False
        self._interim = False
        self._until_close = False

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.sink is None:
            # Bytes nobody asked for: this connection is out of step with the app; never reuse it.
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            self._fail()

    def eof_received(self) -> bool | None:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.sink is not None and self._answered and self._until_close:
            # A body without Content-Length or chunking ends where the connection does.
            self.on_message_complete()
        elif self.sink is not None:
            self._fail()
        else:
            # The app ended an idle keep-alive connection: forget it now, not when it is next taken.
            self.pool.discard(self)

    # -- httptools callbacks ------------------------------------------------------------------

    def on_status(self, status: bytes) -> None:
        self._reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self._names) == len(self._values):
            self._names.append(name)
        elif name:
            self._names[-1] += name
        if value:
            if len(self._values) < len(self._names):
                self._values.append(value)
            else:
                self._values[-1] += value
        elif len(self._values) < len(self._names):
            self._values.append(b"")

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        names, values, reason = self._names, self._values, self._reason
        self._names, self._values, self._reason = [], [], b""
        if 100 <= status < 200:
            # Interim answers (100 Continue, 103 Early Hints) precede the real one.
            self._interim = True
            return
        self.keep_alive = self._parser.should_keep_alive()
        self._answered = True
        framing = {n.lower() for n in names} & {b"content-length", b"transfer-encoding"}
        self._until_close = not framing and status not in (204, 304)
        sink = self.sink
        if sink is not None:
            sink.link_head(status, reason.decode("utf-8", "replace"), names, values)

    def on_body(self, body: bytes) -> None:
        if self.sink is not None:
            self.sink.link_body(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        sink, self.sink = self.sink, None
        self._answered = False
        if self.keep_alive and not self.closed:
            self.pool.put(self)
        else:
            self.close()
        if sink is not None:
            sink.link_complete()

    # -- use ----------------------------------------------------------------------------------

    def send(self, sink: Sink, data: bytes) -> None:
        assert self.transport is not None
        self.sink = sink
        self._answered = False
        self.transport.write(data)

    def pause(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection mid-exchange (the browser left); it never serves anyone again."""
        self.sink = None
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _fail(self) -> None:
        sink, self.sink = self.sink, None
        answered = self._answered
        self.close()
        if sink is not None:
            sink.link_failed(answered)

    @property
    def usable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()


class LinkPool:
    """Idle links per upstream address; one per FastPath."""

    def __init__(self, connect_timeout: float = 10.0) -> None:
        self.connect_timeout = connect_timeout
        self._idle: dict[tuple[str, int], list[Link]] = {}
        self._closed = False

    def take(self, key: tuple[str, int]) -> Link | None:
        idle = self._idle.get(key)
        while idle:
            link = idle.pop()
            if link.usable:
                return link
        return None

    async def connect(self, key: tuple[str, int]) -> Link:
        """A new link (raises OSError or TimeoutError when the app does not take connections)."""
        loop = asyncio.get_running_loop()
        connecting = loop.create_connection(lambda: Link(self, key), key[0], key[1])
        _, link = await asyncio.wait_for(connecting, self.connect_timeout)
        return link

    def put(self, link: Link) -> None:
        idle = self._idle.setdefault(link.key, [])
        if self._closed or len(idle) >= _IDLE_PER_TARGET:
            link.close()
            return
        idle.append(link)

    def discard(self, link: Link) -> None:
        idle = self._idle.get(link.key)
        if idle is not None and link in idle:
            idle.remove(link)

    def close(self) -> None:
        """Close every idle link (shutdown)."""
        self._closed = True
        for idle in self._idle.values():
            for link in idle:
                link.close()
        self._idle.clear()
