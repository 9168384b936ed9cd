"""A lean HTTP/1.1 client for the upstream leg, with a keep-alive pool per target.

aiohttp's ClientSession spends about five times longer per small request than the socket work
itself (timers, tracing, cookie and redirect machinery a proxy switches off anyway); measured on
the benchmark machine it managed 3 200-4 400 small requests/s where a plain keep-alive stream did
12 000 and this client 8 600-9 000. This client does only what forwarding needs: write the head, stream the body, parse
the answer's head, and hand the body over as it arrives (Content-Length, chunked or until close).
Websocket handshakes still go through the shared ClientSession (they are few and long-lived).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from multidict import CIMultiDict

# Bodies are read and handed on in pieces up to this size: big enough for few Python hops per
# megabyte, small enough that a slow browser holds at most a few of them in memory.
READ_SIZE = 256 * 1024
# The stream buffer pauses the socket above twice this much, so memory stays flat per connection;
# it is also the largest response head accepted (cookies grow, but not to half a megabyte).
_BUFFER_LIMIT = 512 * 1024
_IDLE_PER_TARGET = 256
_NO_BODY_STATUSES = frozenset({204, 304})


class UpstreamError(Exception):
    """The upstream broke the protocol or the connection before the answer was complete."""


class UpstreamConnectError(UpstreamError):
    """No connection could be made (refused, unreachable, timed out): nothing was sent."""


@dataclass(slots=True, eq=False)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @property
    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


@dataclass(slots=True, eq=False)
class UpstreamResponse:
    """A parsed response head; the body is read with read() or iter_body(), then release()."""

    status: int
    reason: str
    headers: CIMultiDict[str]
    length: int | None
    chunked: bool
    keep_alive: bool
    _pool: UpstreamPool
    _target: tuple[str, int]
    _conn: _Connection | None
    _done: bool = field(default=False)

    async def read(self) -> bytes:
        """The whole body (used only for bodies known to be small)."""
        conn = self._conn
        assert conn is not None
        if self.length is not None and not self.chunked:
            # One read for the common case: a small answer with a Content-Length.
            try:
                body = await conn.reader.readexactly(self.length)
            except (OSError, asyncio.IncompleteReadError) as exc:
                raise UpstreamError(f"upstream body broken: {exc!r}") from exc
            self._done = True
            return body
        parts = [part async for part in self.iter_body()]
        return b"".join(parts)

    async def iter_body(self) -> AsyncIterator[bytes]:
        """The body as it arrives; raises UpstreamError if it ends early."""
        conn = self._conn
        assert conn is not None
        try:
            if self.chunked:
                async for part in _chunked(conn.reader):
                    yield part
            elif self.length is not None:
                async for part in _sized(conn.reader, self.length):
                    yield part
            else:
                while part := await conn.reader.read(READ_SIZE):
                    yield part
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            raise UpstreamError(f"upstream body broken: {exc!r}") from exc
        self._done = True

    def release(self) -> None:
        """Return the connection to the pool if the body was read to its end, else close it."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._done and self.keep_alive:
            self._pool._put(self._target, conn)
        else:
            conn.close()


async def _sized(reader: asyncio.StreamReader, length: int) -> AsyncIterator[bytes]:
    left = length
    while left:
        part = await reader.read(min(left, READ_SIZE))
        if not part:
            raise UpstreamError(f"upstream closed with {left} of {length} body bytes unsent")
        left -= len(part)
        yield part


async def _chunked(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while True:
        line = await reader.readuntil(b"\r\n")
        size = int(line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            # Trailers, if any, end with an empty line; they are not forwarded.
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass
            return
        async for part in _sized(reader, size):
            yield part
        if await reader.readexactly(2) != b"\r\n":
            raise UpstreamError("chunk not followed by CRLF")


def _parse_head(head: bytes) -> tuple[int, str, bool, CIMultiDict[str]]:
    """Status, reason, HTTP/1.1-or-later flag and headers of a response head."""
    # UTF-8 header values (a filename in Content-Disposition) reach the browser as sent; bytes that
    # are not UTF-8 become U+FFFD instead of failing the response.
    text = head.decode("utf-8", "replace")
    lines = text[:-4].split("\r\n")
    version, _, rest = lines[0].partition(" ")
    status_text, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or len(status_text) != 3 or not status_text.isdigit():
        raise UpstreamError(f"bad status line {lines[0][:100]!r}")
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        # No folding, no bare CR/LF, no whitespace before the colon (RFC 9112 5.1, 5.2).
        if not colon or not name or name != name.strip() or "\n" in line or "\r" in line:
            raise UpstreamError(f"bad header line {line[:100]!r}")
        headers.add(name, value.strip(" \t"))
    return int(status_text), reason, version != "HTTP/1.0", headers


def _framing(method: str, status: int, http11: bool, headers: CIMultiDict[str]) -> tuple[int | None, bool, bool]:
    """Body length (None: chunked or until close), chunked flag, and whether it may be reused."""
    connection = headers.get("Connection", "").lower()
    keep_alive = ("close" not in connection) if http11 else ("keep-alive" in connection)
    if status == 101:
        # The connection now speaks another protocol; it can never serve another request.
        return 0, False, False
    if method == "HEAD" or status in _NO_BODY_STATUSES or status < 200:
        return 0, False, keep_alive
    encoding = headers.get("Transfer-Encoding")
    if encoding is not None:
        if encoding.lower().rsplit(",", 1)[-1].strip() == "chunked":
            return None, True, keep_alive
        return None, False, False
    lengths = headers.getall("Content-Length", ())
    if lengths:
        values = {v.strip() for value in lengths for v in value.split(",")}
        if len(values) != 1 or not next(iter(values)).isdigit():
            raise UpstreamError(f"bad Content-Length {lengths!r}")
        return int(values.pop()), False, keep_alive
    return None, False, False


class UpstreamPool:
    """Keep-alive connections to upstream apps, reused across requests; one per process."""

    def __init__(self, connect_timeout: float = 10.0) -> None:
        self.connect_timeout = connect_timeout
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
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
        conn = None if streamed else self._take(key)
        if conn is not None:
            with contextlib.suppress(_StaleConnection):
                return await self._exchange(conn, key, method, head, body, chunked)
        conn = await self._connect(key)
        try:
            return await self._exchange(conn, key, method, head, body, chunked)
        except _StaleConnection as exc:
            raise UpstreamError("upstream closed the connection without answering") from exc

    async def _connect(self, key: tuple[str, int]) -> _Connection:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(key[0], key[1], limit=_BUFFER_LIMIT), self.connect_timeout
            )
        except (OSError, TimeoutError) as exc:
            raise UpstreamConnectError(f"cannot connect to {key[0]}:{key[1]}: {exc!r}") from exc
        return _Connection(reader, writer)

    async def _exchange(
        self,
        conn: _Connection,
        key: tuple[str, int],
        method: str,
        head: bytes,
        body: bytes | AsyncIterator[bytes] | None,
        chunked: bool,
    ) -> UpstreamResponse:
        try:
            response = await self._send_and_read_head(conn, key, method, head, body, chunked)
        except BaseException:
            conn.close()
            raise
        return response

    async def _send_and_read_head(
        self,
        conn: _Connection,
        key: tuple[str, int],
        method: str,
        head: bytes,
        body: bytes | AsyncIterator[bytes] | None,
        chunked: bool,
    ) -> UpstreamResponse:
        writer, reader = conn.writer, conn.reader
        sent_any = False
        try:
            if body is None or isinstance(body, bytes):
                writer.write(head + body if body else head)
            else:
                writer.write(head)
                await _send_stream(writer, body, chunked)
            sent_any = True
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                status, reason, http11, headers = _parse_head(raw)
                # Interim answers (100 Continue, 103 Early Hints) precede the real one.
                if 100 <= status < 200 and status != 101:
                    continue
                break
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                raise _StaleConnection from exc
            raise UpstreamError("upstream closed mid-head") from exc
        except ConnectionError as exc:
            if not sent_any:
                raise _StaleConnection from exc
            raise UpstreamError(f"upstream connection failed: {exc!r}") from exc
        except asyncio.LimitOverrunError as exc:
            raise UpstreamError("upstream response head too large") from exc
        length, chunked, keep_alive = _framing(method, status, http11, headers)
        response = UpstreamResponse(status, reason, headers, length, chunked, keep_alive, self, key, conn)
        if length == 0:
            response._done = True
        return response

    def _take(self, key: tuple[str, int]) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if conn.usable:
                return conn
            conn.close()
        return None

    def _put(self, key: tuple[str, int], conn: _Connection) -> None:
        idle = self._idle.setdefault(key, [])
        if self._closed or len(idle) >= _IDLE_PER_TARGET or not conn.usable:
            conn.close()
            return
        if idle and not idle[0].usable:
            # The oldest idle connection was closed by the app (its keep-alive timeout): sweep
            # them all now rather than leave their sockets lingering until the pool reaches them.
            for stale in idle:
                if not stale.usable:
                    stale.close()
            idle[:] = [c for c in idle if c.usable]
        idle.append(conn)

    async def close(self) -> None:
        """Close every idle connection (application shutdown)."""
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()


class _StaleConnection(Exception):
    """A reused connection was found closed before any of the answer arrived."""


async def _send_stream(writer: asyncio.StreamWriter, body: AsyncIterator[bytes], chunked: bool) -> None:
    # drain() after each piece: a slow app slows the browser's upload instead of filling memory.
    async for part in body:
        if not part:
            continue
        if chunked:
            writer.write(b"%x\r\n%b\r\n" % (len(part), part))
        else:
            writer.write(part)
        await writer.drain()
    if chunked:
        writer.write(b"0\r\n\r\n")
    await writer.drain()
