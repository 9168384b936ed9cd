"""A fast path in front of aiohttp's server for plain, admitted ``/app/<name>/`` requests.

On small requests aiohttp's web stack (Request objects, router, middleware chain, StreamResponse)
costs several times the forwarding itself. This protocol reads the request head with httptools
(llhttp), and when the request is plain HTTP/1.1 to a running path route and the host
application's ``accept`` callback admits it, forwards it over the shared UpstreamPool and writes
the answer straight to the socket. Everything else, and anything in doubt, is handed to aiohttp's
own protocol on the same connection together with every byte read so far, so aiohttp answers it
exactly as if the fast path did not exist (404/503 pages, the auth gate's 401/redirect/429,
websockets, HTTP/1.0, 100-continue, chunked uploads, bad requests). After a fast-path response
the next request on the connection is looked at afresh and may be handed off then.

The header rules are proxy/headers.py's, applied to the same decoded values aiohttp would see.
"""

from __future__ import annotations

import asyncio
import http
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import NamedTuple, cast

import httptools
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from . import pages
from ._link import Link, LinkPool
from .client import MAX_FIELD_SIZE, MAX_HEADERS
from .dispatch import APP_PREFIX
from .headers import DirectPeer, downstream_response_headers, rewrite_location, upstream_request_headers
from .http import SMALL_BODY
from .table import PORT_ONLY, RUNNING, STARTING, STRIP_PREFIX, Route, RouteTable
from .upstream import UpstreamConnectError, UpstreamError, UpstreamPool, UpstreamResponse

log = logging.getLogger(__name__)

# A head not complete within this many bytes goes to aiohttp, which enforces its own limits.
_MAX_HEAD = 256 * 1024
# Read no further ahead than this while a request is in flight (pipelining, uploads).
_MAX_BUFFERED = 1024 * 1024
# Same idle keep-alive as aiohttp's server.
KEEPALIVE_TIMEOUT = 75.0
_NO_BODY_STATUSES = frozenset({204, 304})
# Route names as AiKore allows them; anything else (percent-escapes, dots) is aiohttp's to decode.
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
# Headers whose presence means the request is not plain HTTP/1.1 with a sized body.
_HAND_OFF_HEADERS = frozenset({"transfer-encoding", "upgrade", "expect"})


class Decision(NamedTuple):
    """The host application's admission of a request: the headers to forward (credentials gone)."""

    headers: CIMultiDict[str] | CIMultiDictProxy[str]


# accept(headers, method, target, client_address) -> Decision, or None to let aiohttp decide.
AcceptFn = Callable[[CIMultiDictProxy[str], str, str, str], "Decision | None"]


class FastPath:
    """Protocol factory for loop.create_server(); shares the table, pool and aiohttp's server."""

    def __init__(
        self,
        table: RouteTable,
        pool: UpstreamPool,
        fallback: Callable[[], asyncio.Protocol],
        accept: AcceptFn,
        prefix: str = APP_PREFIX,
    ) -> None:
        self.table = table
        self.pool = pool
        self.fallback = fallback
        self.accept = accept
        self.prefix = prefix + "/"
        self.handed_off = 0
        self.forwarded = 0
        self.links = LinkPool(pool.connect_timeout)
        self._open: set[FastPathProtocol] = set()

    def __call__(self) -> FastPathProtocol:
        return FastPathProtocol(self)

    def close_connections(self) -> None:
        """Close connections still owned by the fast path (shutdown); aiohttp closes its own."""
        for proto in list(self._open):
            proto.close()
        self.links.close()


class _Head:
    """httptools callbacks for one request head."""

    __slots__ = ("done", "keep_alive", "method", "names", "parser", "url", "values", "version")

    def __init__(self) -> None:
        self.url = b""
        self.names: list[bytes] = []
        self.values: list[bytes] = []
        self.done = False
        self.keep_alive = False
        self.method = b""
        self.version = ""
        self.parser: httptools.HttpRequestParser | None = None

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # llhttp may split a long header across calls; a name or value piece continues the last.
        if len(self.names) == len(self.values):
            self.names.append(name)
        elif name:
            self.names[-1] += name
        if value:
            if len(self.values) < len(self.names):
                self.values.append(value)
            else:
                self.values[-1] += value
        elif len(self.values) < len(self.names):
            self.values.append(b"")

    def on_headers_complete(self) -> None:
        # llhttp's connection flags are only meaningful until the message completes.
        parser = self.parser
        assert parser is not None
        self.keep_alive = parser.should_keep_alive()
        self.method = parser.get_method()
        self.version = parser.get_http_version()
        self.done = True


class _Body:
    """A request body streamed from the browser to the upstream with back-pressure both ways."""

    def __init__(self, proto: FastPathProtocol, length: int) -> None:
        self.proto = proto
        self.left = length
        self.parts: list[bytes] = []
        self.buffered = 0
        self.waiter: asyncio.Future[None] | None = None
        self.failed = False

    def feed(self, data: bytes) -> bytes:
        """Take this body's share of ``data``; return what belongs to the next request."""
        take, rest = data[: self.left], data[self.left :]
        if take:
            self.left -= len(take)
            self.parts.append(take)
            self.buffered += len(take)
            self._wake()
            if self.buffered > _MAX_BUFFERED:
                self.proto.pause()
        return rest

    def fail(self) -> None:
        self.failed = True
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        route = self.proto.route
        while True:
            if self.parts:
                data = b"".join(self.parts)
                self.parts.clear()
                self.buffered = 0
                self.proto.resume()
                if route is not None:
                    route.bytes_in += len(data)
                    route.last_activity = time.time()
                yield data
                continue
            if self.left == 0:
                return
            if self.failed:
                raise ConnectionError("browser left mid-upload")
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
            self.waiter = None


class FastPathProtocol(asyncio.Protocol):
    """One browser connection while the fast path owns it."""

    def __init__(self, fast: FastPath) -> None:
        self.fast = fast
        self.transport: asyncio.Transport | None = None
        self.address = "unknown"
        self.route: Route | None = None
        self._buf = b""
        self._task: asyncio.Task[bool] | None = None
        self._exchange: _Exchange | None = None
        self._body: _Body | None = None
        self._small: tuple[int, Callable[[bytes], None]] | None = None
        self._paused_reading = False
        self._drain: asyncio.Future[None] | None = None
        self._closed = False
        self._eof = False
        self._last_data = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have the same methods.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, (tuple, list)) and peer:
            self.address = str(peer[0])
        self.fast._open.add(self)
        self._last_data = time.monotonic()
        self._idle_timer = asyncio.get_running_loop().call_later(KEEPALIVE_TIMEOUT, self._idle_check)

    def data_received(self, data: bytes) -> None:
        self._last_data = time.monotonic()
        if self._body is not None:
            data = self._body.feed(data)
            if self._body.left == 0:
                self._body = None
            if not data:
                return
        self._buf += data
        if self._small is not None:
            self._fill_small()
        elif not self._busy:
            self._next()
        elif len(self._buf) > _MAX_BUFFERED:
            self.pause()

    def eof_received(self) -> bool | None:
        # A half-closed browser gets its in-flight answer; the connection ends after it.
        self._eof = True
        if not self._busy:
            self.close()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.fast._open.discard(self)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if self._body is not None:
            self._body.fail()
        if self._task is not None:
            self._task.cancel()
        if self._exchange is not None:
            self._exchange.cancel()
        if self._drain is not None and not self._drain.done():
            self._drain.set_exception(ConnectionResetError("browser left"))
            # Retrieved here so an unawaited failure is not logged.
            self._drain.exception()

    def pause_writing(self) -> None:
        if self._drain is None or self._drain.done():
            self._drain = asyncio.get_running_loop().create_future()
        if self._exchange is not None:
            self._exchange.pause()

    def resume_writing(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._drain = None
        if self._exchange is not None:
            self._exchange.resume()
        if not self._busy and not self._closed and self._buf and self._small is None:
            self._next()

    @property
    def _busy(self) -> bool:
        return self._task is not None or self._exchange is not None

    # -- reading ------------------------------------------------------------------------------

    def pause(self) -> None:
        if not self._paused_reading and self.transport is not None and not self._closed:
            self._paused_reading = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self._paused_reading and self.transport is not None and not self._closed:
            self._paused_reading = False
            self.transport.resume_reading()

    def close(self) -> None:
        if self.transport is not None and not self._closed:
            self._closed = True
            self.transport.close()

    def _idle_check(self) -> None:
        idle = time.monotonic() - self._last_data
        if not self._busy and self._small is None and idle >= KEEPALIVE_TIMEOUT:
            self.close()
            return
        delay = max(1.0, KEEPALIVE_TIMEOUT - idle)
        self._idle_timer = asyncio.get_running_loop().call_later(delay, self._idle_check)

    def _next(self) -> None:
        """Look at the next request head in the buffer: forward it, wait for more, or hand off."""
        if self._drain is not None or self._closed:
            # Whoever answers next must start with a flushed socket.
            return
        buf = self._buf
        if not buf:
            if self._eof:
                self.close()
            self.resume()
            return
        end = buf.find(b"\r\n\r\n")
        if end == -1:
            if len(buf) > _MAX_HEAD or b"\n\n" in buf:
                self._hand_off()
            else:
                self.resume()
            return
        head_len = end + 4
        request = self._admit(buf[:head_len])
        if request is None:
            self._hand_off()
            return
        self._buf = buf[head_len:]
        self.fast.forwarded += 1
        method, target, headers, route, length, close, mount = request
        self.route = route
        if length <= SMALL_BODY:
            # Small bodies are sent whole, so a stale pooled connection can be retried with them.
            # HEAD answers carry a length but no body: only the stream client knows to expect that.
            start = self._start if method == "HEAD" else self._exchange_start
            if length == 0:
                start(method, target, headers, route, None, close, mount)
                return

            def ready(body: bytes) -> None:
                route.bytes_in += len(body)
                start(method, target, headers, route, body, close, mount)

            self._small = (length, ready)
            self._fill_small()
            return
        body = self._body = _Body(self, length)
        rest = body.feed(self._buf)
        self._buf = rest
        if body.left == 0:
            self._body = None
        self._start(method, target, headers, route, body, close, mount)

    def _fill_small(self) -> None:
        assert self._small is not None
        length, ready = self._small
        if len(self._buf) < length:
            if len(self._buf) > _MAX_BUFFERED:
                self.pause()
            return
        body, self._buf = self._buf[:length], self._buf[length:]
        self._small = None
        ready(body)

    def _admit(
        self, head: bytes
    ) -> tuple[str, str, CIMultiDict[str], Route, int, bool, str] | None:
        """The request if the fast path may forward it, else None (aiohttp's then)."""
        parsed = _Head()
        parser = parsed.parser = httptools.HttpRequestParser(parsed)
        try:
            parser.feed_data(head)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            # Upgrades (websockets, h2c) and anything malformed are aiohttp's.
            return None
        parsed.parser = None
        if not parsed.done or parsed.version != "1.1" or len(parsed.names) != len(parsed.values):
            return None
        if len(head) > MAX_FIELD_SIZE or len(parsed.names) > MAX_HEADERS:
            # Past aiohttp's limits, aiohttp answers (431/400) as it always did.
            return None
        try:
            raw = parsed.url.decode("ascii")
        except UnicodeDecodeError:
            return None
        prefix = self.fast.prefix
        if not raw.startswith(prefix) or "#" in raw:
            return None
        name_end = raw.find("/", len(prefix))
        query = raw.find("?")
        if name_end == -1 or (query != -1 and query < name_end):
            return None  # /app/<name> without its slash: aiohttp redirects
        path = raw if query == -1 else raw[:query]
        if "/." in path or "%2e" in path or "%2E" in path:
            return None  # dot segments: leave normalising to aiohttp
        name = raw[len(prefix) : name_end]
        route = self.fast.table.get(name)
        if route is None or route.state != RUNNING or route.port is None or route.mode == PORT_ONLY:
            return None
        if not _NAME.fullmatch(name):
            return None
        headers = _decode_headers(parsed.names, parsed.values)
        if headers is None:
            return None
        length = _content_length(headers)
        if length is None or "Host" not in headers:
            return None
        method = parsed.method.decode("ascii")
        decision = self.fast.accept(CIMultiDictProxy(headers), method, raw, self.address)
        if decision is None:
            return None
        close = not parsed.keep_alive
        mount = raw[:name_end]
        target = raw[name_end:] if route.mode == STRIP_PREFIX else raw
        peer = DirectPeer(self.address, headers["Host"], "http")
        admitted = decision.headers
        if not isinstance(admitted, CIMultiDictProxy):
            admitted = CIMultiDictProxy(admitted)
        # A fresh dict, owned by this request from here on (the upstream client adds to it).
        upstream_headers = upstream_request_headers(admitted, peer=peer, prefix=mount)
        # Location rewriting keeps redirects inside the mount only where the prefix was stripped.
        return method, target, upstream_headers, route, length, close, mount if route.mode == STRIP_PREFIX else ""

    def _hand_off(self) -> None:
        """Give the connection and every unread byte to aiohttp's protocol for good."""
        transport = self.transport
        assert transport is not None
        self.fast.handed_off += 1
        self.fast._open.discard(self)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self._closed = True
        data, self._buf = self._buf, b""
        proto = self.fast.fallback()
        transport.set_protocol(proto)
        proto.connection_made(transport)
        if self._paused_reading:
            # Before the data: aiohttp may pause reading again itself while taking it.
            transport.resume_reading()
        if data:
            proto.data_received(data)

    # -- one forwarded request ----------------------------------------------------------------

    def _start(
        self,
        method: str,
        target: str,
        headers: CIMultiDict[str],
        route: Route,
        body: bytes | _Body | None,
        close: bool,
        mount: str,
    ) -> None:
        forward = self._forward(method, target, headers, route, body, close, mount)
        self._task = asyncio.get_running_loop().create_task(forward)
        self._task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[bool]) -> None:
        self._task = None
        if self._closed:
            return
        if task.cancelled():
            self._abort()
            return
        exc = task.exception()
        if exc is not None:
            log.error("fast path: forwarding failed", exc_info=exc)
            self._abort()
            return
        self._after(task.result())

    def _after(self, keep: bool) -> None:
        """One request is answered: go on to the next one, or end the connection."""
        self.route = None
        if self._closed:
            return
        # An upload the app answered before reading to its end leaves bytes that frame nothing.
        if not keep or self._body is not None or self._small is not None:
            self.close()
            return
        self._next()

    def _exchange_start(
        self,
        method: str,
        target: str,
        headers: CIMultiDict[str],
        route: Route,
        body: bytes | None,
        close: bool,
        mount: str,
    ) -> None:
        route.requests += 1
        route.last_activity = time.time()
        # Encoded as the stream client does: the browser's exact bytes back (surrogateescape).
        head = "".join(
            [f"{method} {target} HTTP/1.1\r\n", *[f"{k}: {v}\r\n" for k, v in headers.items()], "\r\n"]
        ).encode("utf-8", "surrogateescape")
        exchange = self._exchange = _Exchange(self, route, head + body if body else head, headers["Host"], mount, close)
        exchange.start()

    def _exchange_done(self, keep: bool) -> None:
        self._exchange = None
        self._after(keep)

    async def _forward(
        self,
        method: str,
        target: str,
        headers: CIMultiDict[str],
        route: Route,
        body: bytes | _Body | None,
        close: bool,
        mount: str,
    ) -> bool:
        """Send one request upstream and relay the answer; True if the connection may go on."""
        route.requests += 1
        route.last_activity = time.time()
        host = self.fast.table.upstream_host
        port = route.port
        assert port is not None
        try:
            upstream = await self.fast.pool.request(host, port, method, target, headers, body)
        except UpstreamConnectError:
            self._write_page(pages.starting() if route.state == STARTING else pages.bad_gateway(), close)
            return not close
        except UpstreamError:
            self._write_page(pages.bad_gateway(), close)
            return not close
        try:
            complete = await self._relay(method, route, upstream, headers.get("Host", ""), mount, close)
        finally:
            upstream.release()
        if not complete:
            self._abort()
            return False
        return not close

    async def _relay(
        self,
        method: str,
        route: Route,
        upstream: UpstreamResponse,
        browser_host: str,
        mount: str,
        close: bool,
    ) -> bool:
        """Write the upstream's answer to the browser; False if it broke off mid-body."""
        status = upstream.status
        headers = downstream_response_headers(upstream.headers)
        location = headers.get("Location")
        if location is not None:
            headers["Location"] = rewrite_location(location, mount=mount, own_hosts=_own_hosts(browser_host, route))
        if close:
            headers["Connection"] = "close"
        if method == "HEAD" or status in _NO_BODY_STATUSES or status < 200:
            if status in _NO_BODY_STATUSES:
                headers.popall("Content-Length", None)
            self._write(_head(status, upstream.reason, headers))
            return True
        if upstream.chunked:
            headers.popall("Content-Length", None)
        length = upstream.length
        if length is not None and length <= SMALL_BODY:
            try:
                body = await upstream.read()
            except UpstreamError:
                return False
            route.bytes_out += len(body)
            self._write(_head(status, upstream.reason, headers) + body)
            return True
        if headers.get("Content-Type", "").startswith("text/event-stream"):
            headers["X-Accel-Buffering"] = "no"
        framed = length is None
        if framed:
            headers["Transfer-Encoding"] = "chunked"
        self._write(_head(status, upstream.reason, headers))
        try:
            async for chunk in upstream.iter_body():
                route.bytes_out += len(chunk)
                route.last_activity = time.time()
                self._write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if framed else chunk)
                if self._drain is not None:
                    await self._drain
        except (UpstreamError, ConnectionError):
            return False
        if framed:
            self._write(b"0\r\n\r\n")
        return True

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self._closed:
            self.transport.write(data)

    def _write_page(self, response: web.Response, close: bool) -> None:
        body = response.body
        assert isinstance(body, bytes)
        headers = CIMultiDict(response.headers)
        headers["Content-Length"] = str(len(body))
        if close:
            headers["Connection"] = "close"
        self._write(_head(response.status, response.reason, headers) + body)

    def _abort(self) -> None:
        """Cut the connection so a truncated body is never taken as complete."""
        if self.transport is not None and not self._closed:
            self._closed = True
            self.transport.abort()


class _Exchange:
    """One request on a raw upstream link, its answer written to the browser as it arrives."""

    def __init__(
        self, proto: FastPathProtocol, route: Route, request: bytes, browser_host: str, mount: str, close: bool
    ) -> None:
        self.proto = proto
        self.route = route
        self.request = request
        self.browser_host = browser_host
        self.mount = mount
        self.close = close
        port = route.port
        assert port is not None
        self.key = (proto.fast.table.upstream_host, port)
        self.link: Link | None = None
        self.reused = False
        self.connecting: asyncio.Task[Link] | None = None
        self.framed = False
        self.held: list[bytes] | None = None
        self.head = b""
        self.paused = False

    def start(self) -> None:
        link = self.proto.fast.links.take(self.key)
        if link is None:
            self._connect()
            return
        self.reused = True
        self._send(link)

    def _connect(self) -> None:
        self.reused = False
        self.connecting = asyncio.get_running_loop().create_task(self.proto.fast.links.connect(self.key))
        self.connecting.add_done_callback(self._connected)

    def _connected(self, task: asyncio.Task[Link]) -> None:
        self.connecting = None
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            if not isinstance(exc, (OSError, TimeoutError)):
                log.error("fast path: connecting upstream failed", exc_info=exc)
            page = pages.starting() if self.route.state == STARTING else pages.bad_gateway()
            self.proto._write_page(page, self.close)
            self.proto._exchange_done(not self.close)
            return
        link = task.result()
        if self.proto._closed:
            link.close()
            return
        self._send(link)

    def _send(self, link: Link) -> None:
        self.link = link
        if self.paused:
            link.pause()
        link.send(self, self.request)

    def pause(self) -> None:
        self.paused = True
        if self.link is not None:
            self.link.pause()

    def resume(self) -> None:
        self.paused = False
        if self.link is not None:
            self.link.resume()

    def cancel(self) -> None:
        """The browser left: drop the upstream side too (never pooled mid-answer)."""
        if self.connecting is not None:
            self.connecting.cancel()
        if self.link is not None:
            self.link.abort()
            self.link = None

    # -- Sink ---------------------------------------------------------------------------------

    def link_head(self, status: int, reason: str, names: list[bytes], values: list[bytes]) -> None:
        upstream: CIMultiDict[str] = CIMultiDict()
        for name, value in zip(names, values, strict=False):
            upstream.add(name.decode("utf-8", "replace"), value.decode("utf-8", "replace").strip(" \t"))
        chunked = "Transfer-Encoding" in upstream
        headers = downstream_response_headers(CIMultiDictProxy(upstream))
        location = headers.get("Location")
        if location is not None:
            own = _own_hosts(self.browser_host, self.route)
            headers["Location"] = rewrite_location(location, mount=self.mount, own_hosts=own)
        if self.close:
            headers["Connection"] = "close"
        if status in _NO_BODY_STATUSES or status < 200:
            if status in _NO_BODY_STATUSES:
                headers.popall("Content-Length", None)
            self.proto._write(_head(status, reason, headers))
            return
        length = None
        if chunked:
            headers.popall("Content-Length", None)
        else:
            lengths = headers.getall("Content-Length", ())
            if len(lengths) == 1 and lengths[0].isdigit():
                length = int(lengths[0])
        if length is not None and length <= SMALL_BODY:
            # Head and body go out in one write once the body is in.
            self.head = _head(status, reason, headers)
            self.held = []
            return
        if headers.get("Content-Type", "").startswith("text/event-stream"):
            headers["X-Accel-Buffering"] = "no"
        if length is None:
            self.framed = True
            headers["Transfer-Encoding"] = "chunked"
        self.proto._write(_head(status, reason, headers))

    def link_body(self, data: bytes) -> None:
        self.route.bytes_out += len(data)
        if self.held is not None:
            self.held.append(data)
            return
        self.route.last_activity = time.time()
        self.proto._write(b"%x\r\n%b\r\n" % (len(data), data) if self.framed else data)

    def link_complete(self) -> None:
        self.link = None
        if self.held is not None:
            self.proto._write(self.head + b"".join(self.held))
        elif self.framed:
            self.proto._write(b"0\r\n\r\n")
        self.proto._exchange_done(not self.close)

    def link_failed(self, answered: bool) -> None:
        self.link = None
        if not answered and self.reused:
            # The app closed this kept-alive connection just as it was reused: try a fresh one.
            self._connect()
            return
        if not answered:
            self.proto._write_page(pages.bad_gateway(), self.close)
            self.proto._exchange_done(not self.close)
            return
        # Mid-answer: cut the browser off so a truncated body is never taken as complete.
        self.proto._abort()
        self.proto._exchange_done(False)


def _decode_headers(names: list[bytes], values: list[bytes]) -> CIMultiDict[str] | None:
    # As aiohttp decodes them (UTF-8, surrogateescape), so re-encoding gives back the exact bytes.
    headers: CIMultiDict[str] = CIMultiDict()
    try:
        for name, value in zip(names, values, strict=True):
            text = name.decode("ascii")
            if text.lower() in _HAND_OFF_HEADERS:
                return None
            headers.add(text, value.strip(b" \t").decode("utf-8", "surrogateescape"))
    except UnicodeDecodeError:
        return None
    return headers


def _content_length(headers: CIMultiDict[str]) -> int | None:
    """The body length (0 without one), or None when it is anything but one plain number."""
    values = headers.getall("Content-Length", ())
    if not values:
        return 0
    if len(values) != 1 or not values[0].isdigit() or not values[0].isascii():
        return None
    return int(values[0])


def _head(status: int, reason: str, headers: CIMultiDict[str]) -> bytes:
    if not reason:
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = ""
    lines = [f"HTTP/1.1 {status} {reason}\r\n", *[f"{k}: {v}\r\n" for k, v in headers.items()], "\r\n"]
    return "".join(lines).encode("utf-8", "surrogateescape")


def _own_hosts(host: str, route: Route) -> frozenset[str]:
    port = route.port
    return frozenset({host.lower(), f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"})
