"""The upstream leg: an HTTP/1.1 client on llhttp (httptools) callbacks, with a keep-alive pool.

aiohttp's ClientSession spends several times longer per small request than the socket work itself
(timers, tracing, cookie and redirect machinery a proxy switches off anyway). A ``Link`` is one
connection to an app as an ``asyncio.Protocol``: the request is written straight to the transport,
the answer is parsed by httptools as bytes arrive (no hand-written parser: chunk sizes, lengths and
header syntax are llhttp's), and the body is handed on in the pieces it arrived in. A browser that
reads slowly pauses the link's reading, so memory stays flat per connection.

A link serves one exchange at a time and goes back to the pool only when its answer was read to
the end and it delivered nothing more: bytes the app sends beyond its answer (a second response
nobody asked for, trailing garbage) mean the connection is out of step with the app, so it is
closed and never handed to another request. Websocket handshakes use the shared ClientSession.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httptools
from multidict import CIMultiDict

# Reading pauses once this much body waits for a slow browser (per connection).
_HIGH_WATER = 512 * 1024
# The largest response head accepted (cookies grow, but not to half a megabyte).
_MAX_HEAD = 512 * 1024
_IDLE_PER_TARGET = 256


class UpstreamError(Exception):
    """The upstream broke the protocol or the connection before the answer was complete."""


class UpstreamConnectError(UpstreamError):
    """No connection could be made (refused, unreachable, timed out): nothing was sent."""


class _Stale(UpstreamError):
    """A reused connection turned out closed before any of the answer arrived."""


class _OutOfStep(Exception):
    """Raised inside a parser callback to stop parsing bytes nobody asked for."""


@dataclass(slots=True, eq=False)
class UpstreamResponse:
    """A parsed response head; the body is read with read() or iter_body(), then release()."""

    status: int
    reason: str
    headers: CIMultiDict[str]
    # Content-Length when the body is sized; None for chunked or until-close bodies.
    length: int | None
    chunked: bool
    _link: Link | None = field(repr=False)

    async def read(self) -> bytes:
        """The whole body (used only for bodies known to be small)."""
        return b"".join([part async for part in self.iter_body()])

    async def iter_body(self) -> AsyncIterator[bytes]:
        """The body as it arrives; raises UpstreamError if it ends early or breaks the protocol."""
        link = self._link
        assert link is not None
        while (part := await link.next_body_part()) is not None:
            yield part

    def release(self) -> None:
        """Return the connection to the pool if its answer was read to the end, else close it."""
        link, self._link = self._link, None
        if link is not None:
            link.finish()


class Link(asyncio.Protocol):
    """One connection to one app; carries one exchange at a time."""

    def __init__(self, pool: UpstreamPool, key: tuple[str, int]) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._loop = asyncio.get_running_loop()
        self._reset()
        self._drained: asyncio.Future[None] | None = None
        self._paused_writing = False

    def _reset(self) -> None:
        self._expecting = False
        self._received_any = False
        self._head_only = False
        self._head_bytes = 0
        self._head: asyncio.Future[UpstreamResponse] | None = None
        self._reason = b""
        self._names: list[bytes] = []
        self._values: list[bytes] = []
        self._interim = False
        self._answered = False
        self._until_close = False
        self._keep_alive = False
        self._complete = False
        self._error: UpstreamError | None = None
        self._parts: deque[bytes] = deque()
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self._expecting:
            # Bytes nobody asked for: this connection is out of step with the app; never reuse it.
            self.close()
            return
        self._received_any = True
        if not self._answered:
            self._head_bytes += len(data)
            if self._head_bytes > _MAX_HEAD:
                self._fail(UpstreamError("upstream response head too large"))
                return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _OutOfStep) or isinstance(exc.__cause__, _OutOfStep):
                self.close()
            else:
                self._fail(UpstreamError(f"upstream answer broken: {exc!r}"))
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            if self._complete:
                # Garbage after a complete answer: the answer stands, the connection goes.
                self.close()
            else:
                self._fail(UpstreamError(f"upstream answer broken: {exc!r}"))

    def eof_received(self) -> bool | None:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._drained is not None and not self._drained.done():
            self._drained.set_exception(ConnectionResetError("upstream closed the connection"))
        if not self._expecting:
            # The app ended an idle keep-alive connection: forget it now, not when it is next taken.
            self.pool._discard(self)
            return
        if self._complete:
            return
        if self._answered and self._until_close:
            # A body without Content-Length or chunking ends where the connection does.
            self._message_done()
        elif not self._received_any:
            self._fail(_Stale("upstream closed the connection without answering"))
        else:
            self._fail(UpstreamError("upstream closed the connection before its answer was complete"))

    def pause_writing(self) -> None:
        self._paused_writing = True

    def resume_writing(self) -> None:
        self._paused_writing = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    # -- httptools callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._complete:
            # A second response in the same bytes: nobody asked for it.
            raise _OutOfStep

    def on_status(self, status: bytes) -> None:
        self._reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        # llhttp may hand a name or value over in pieces when it straddles two reads.
        if len(self._names) == len(self._values):
            self._names.append(name)
            self._values.append(value)
        else:
            self._values[-1] += value

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        names, values, reason = self._names, self._values, self._reason
        self._names, self._values, self._reason = [], [], b""
        if 100 <= status < 200 and status != 101:
            # Interim answers (100 Continue, 103 Early Hints) precede the real one.
            self._interim = True
            return
        self._answered = True
        self._keep_alive = self._parser.should_keep_alive() and status != 101
        # UTF-8 header values (a filename in Content-Disposition) reach the browser as sent; bytes
        # that are not UTF-8 become U+FFFD instead of failing the response.
        headers: CIMultiDict[str] = CIMultiDict()
        for name, value in zip(names, values, strict=True):
            headers.add(name.decode("latin-1"), value.decode("utf-8", "replace").strip(" \t"))
        encoding = headers.get("Transfer-Encoding", "")
        chunked = encoding.lower().rsplit(",", 1)[-1].strip() == "chunked"
        length_text = headers.get("Content-Length") if not encoding else None
        length = int(length_text) if length_text is not None and length_text.isdigit() else None
        no_body = self._head_only or status in (204, 304) or status == 101
        self._until_close = not no_body and not chunked and length is None
        if self._until_close:
            self._keep_alive = False
        if no_body:
            length = 0
        response = UpstreamResponse(status, reason.decode("utf-8", "replace"), headers, length, chunked, self)
        if self._head is not None and not self._head.done():
            self._head.set_result(response)
        if no_body:
            # llhttp cannot know a HEAD answer has no body: the exchange ends here, and since the
            # parser may still expect one, the connection is not reused.
            if self._head_only:
                self._keep_alive = False
            self._message_done()

    def on_body(self, body: bytes) -> None:
        self._parts.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        if not self._complete:
            self._message_done()

    # -- one exchange -------------------------------------------------------------------------

    async def exchange(
        self, method: str, head: bytes, body: bytes | AsyncIterator[bytes] | None, chunked: bool
    ) -> UpstreamResponse:
        """Send one request and return once the response head has arrived."""
        assert self.transport is not None
        self._reset()
        self._expecting = True
        self._head_only = method == "HEAD"
        self._head = self._loop.create_future()
        if body is None or isinstance(body, bytes):
            self.transport.write(head + body if body else head)
        else:
            self.transport.write(head)
            await self._send_stream(body, chunked)
        return await self._head

    async def next_body_part(self) -> bytes | None:
        """The next piece of the body, or None at its end."""
        while not self._parts:
            if self._complete:
                return None
            if self._error is not None:
                raise self._error
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        part = self._parts.popleft()
        self._buffered -= len(part)
        if self._buffered <= _HIGH_WATER // 2 and self.transport is not None and not self.closed:
            self.transport.resume_reading()
        return part

    def finish(self) -> None:
        """The exchange is over: back to the pool if the answer was whole and nothing is amiss."""
        reusable = self._complete and not self._parts and self._keep_alive and not self.closed
        self._expecting = False
        if reusable:
            self.pool._put(self)
        else:
            self.close()

    def close(self) -> None:
        self.closed = True
        self._keep_alive = False
        if self.transport is not None:
            self.transport.close()

    @property
    def usable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def _message_done(self) -> None:
        self._complete = True
        self._wake()

    def _fail(self, error: UpstreamError) -> None:
        self._error = error
        self.close()
        if self._head is not None and not self._head.done():
            self._head.set_exception(error)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _send_stream(self, body: AsyncIterator[bytes], chunked: bool) -> None:
        # Waits while the app's socket is full: a slow app slows the browser's upload instead of
        # the upload piling up here.
        assert self.transport is not None
        async for part in body:
            if not part:
                continue
            if self.closed:
                raise UpstreamError("upstream closed the connection during the upload")
            self.transport.write(b"%x\r\n%b\r\n" % (len(part), part) if chunked else part)
            if self._paused_writing:
                self._drained = self._loop.create_future()
                try:
                    await self._drained
                except ConnectionError as exc:
                    raise UpstreamError(f"upstream connection failed: {exc!r}") from exc
        if chunked:
            self.transport.write(b"0\r\n\r\n")


class UpstreamPool:
    """Keep-alive connections to upstream apps, reused across requests; one per process."""

    def __init__(self, connect_timeout: float = 10.0) -> None:
        self.connect_timeout = connect_timeout
        self._idle: dict[tuple[str, int], list[Link]] = {}
        self._closed = False

    async def request(
        self,
        host: str,
        port: int,
        method: str,
        target: str,
        headers: CIMultiDict[str],
        body: bytes | AsyncIterator[bytes] | None,
    ) -> UpstreamResponse:
        """Send one request and return once the response head has arrived."""
        key = (host, port)
        if "Host" not in headers:
            headers["Host"] = f"{host}:{port}"
        streamed = body is not None and not isinstance(body, bytes)
        chunked = streamed and "Content-Length" not in headers
        if chunked:
            headers["Transfer-Encoding"] = "chunked"
        # aiohttp decoded the browser's bytes as UTF-8 with surrogateescape: this gives them back exactly.
        head = "".join(
            [f"{method} {target} HTTP/1.1\r\n", *[f"{k}: {v}\r\n" for k, v in headers.items()], "\r\n"]
        ).encode("utf-8", "surrogateescape")
        # A streamed body cannot be sent twice, so it never risks a kept-alive connection the app
        # may be closing right now; everything else retries once on a fresh one if that happens.
        link = None if streamed else self._take(key)
        if link is not None:
            try:
                return await link.exchange(method, head, body, chunked)
            except _Stale:
                pass
        link = await self._connect(key)
        try:
            return await link.exchange(method, head, body, chunked)
        except BaseException:
            link.close()
            raise

    async def _connect(self, key: tuple[str, int]) -> Link:
        loop = asyncio.get_running_loop()
        try:
            _, link = await asyncio.wait_for(
                loop.create_connection(lambda: Link(self, key), key[0], key[1]), self.connect_timeout
            )
        except (OSError, TimeoutError) as exc:
            raise UpstreamConnectError(f"cannot connect to {key[0]}:{key[1]}: {exc!r}") from exc
        return link

    def _take(self, key: tuple[str, int]) -> Link | None:
        idle = self._idle.get(key)
        while idle:
            link = idle.pop()
            if link.usable:
                return link
            link.close()
        return None

    def _put(self, link: Link) -> None:
        idle = self._idle.setdefault(link.key, [])
        if self._closed or len(idle) >= _IDLE_PER_TARGET or not link.usable:
            link.close()
            return
        idle.append(link)

    def _discard(self, link: Link) -> None:
        idle = self._idle.get(link.key)
        if idle is not None and link in idle:
            idle.remove(link)

    async def close(self) -> None:
        """Close every idle connection (application shutdown)."""
        self._closed = True
        for idle in self._idle.values():
            for link in idle:
                link.close()
        self._idle.clear()
