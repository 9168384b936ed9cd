"""The upstream HTTP/1.1 client against raw servers that answer exactly the bytes a test gives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from multidict import CIMultiDict

import proxy
from proxy.upstream import UpstreamPool

Answer = Callable[[bytes], bytes]


class RawServer:
    """Reads one request head (and a Content-Length body), writes answer(head); optionally closes."""

    def __init__(self, answer: Answer, close_after: bool) -> None:
        self.answer = answer
        self.close_after = close_after
        self.connections = 0
        self.heads: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                writer.write(self.answer(head))
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])


@pytest_asyncio.fixture
async def raw() -> AsyncIterator[Callable[..., asyncio.Future[RawServer]]]:
    servers: list[RawServer] = []

    async def start(answer: Answer, close_after: bool = False) -> RawServer:
        server = RawServer(answer, close_after)
        server.server = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        servers.append(server)
        return server

    yield start  # type: ignore[misc]
    for server in servers:
        assert server.server is not None
        server.server.close()


@pytest_asyncio.fixture
async def pool() -> AsyncIterator[UpstreamPool]:
    pool = UpstreamPool()
    yield pool
    await pool.close()


async def _get(pool: UpstreamPool, port: int, method: str = "GET") -> tuple[int, bytes, CIMultiDict[str]]:
    response = await pool.request("127.0.0.1", port, method, "/x", CIMultiDict({"Host": "h"}), None)
    try:
        body = await response.read()
    finally:
        response.release()
    return response.status, body, response.headers


async def test_interim_responses_are_skipped(raw, pool: UpstreamPool) -> None:
    server = await raw(
        lambda _: (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        )
    )
    status, body, _ = await _get(pool, server.port)
    assert (status, body) == (200, b"ok")


async def test_chunked_with_extensions_and_trailers_is_decoded(raw, pool: UpstreamPool) -> None:
    server = await raw(
        lambda _: (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
        )
    )
    _status, body, _ = await _get(pool, server.port)
    assert body == b"hello world"
    # The connection went back to the pool and is reused for the next request.
    await _get(pool, server.port)
    assert server.connections == 1


async def test_body_until_close_when_no_length_is_given(raw, pool: UpstreamPool) -> None:
    server = await raw(lambda _: b"HTTP/1.0 200 OK\r\n\r\nall of it", close_after=True)
    _status, body, _ = await _get(pool, server.port)
    assert body == b"all of it"


async def test_an_idle_connection_the_app_closed_is_retried_on_a_fresh_one(raw, pool: UpstreamPool) -> None:
    # The app answers keep-alive style but drops every connection afterwards (like a short
    # keep-alive timeout firing just as the proxy reuses the connection).
    server = await raw(lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!", close_after=True)
    for _ in range(3):
        status, body, _ = await _get(pool, server.port)
        assert (status, body) == (200, b"!")
    assert server.connections == 3


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nX-Bad: a\nb\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Bad : a\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"HTTX/1.1 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Huge: " + b"a" * 600_000 + b"\r\n\r\n",
    ],
)
async def test_malformed_answers_are_upstream_errors(raw, pool: UpstreamPool, answer: bytes) -> None:
    server = await raw(lambda _: answer)
    with pytest.raises(proxy.UpstreamError):
        await _get(pool, server.port)


async def test_host_is_added_when_the_browser_sent_none(raw, pool: UpstreamPool) -> None:
    server = await raw(lambda _: b"HTTP/1.1 204 No Content\r\n\r\n")
    response = await pool.request("127.0.0.1", server.port, "GET", "/", CIMultiDict(), None)
    response.release()
    assert f"Host: 127.0.0.1:{server.port}\r\n".encode() in server.heads[0]


async def test_refused_connection_is_a_connect_error(pool: UpstreamPool, closed_port: int) -> None:
    with pytest.raises(proxy.UpstreamConnectError):
        await _get(pool, closed_port)


async def test_idle_connections_the_app_closed_are_swept(raw, pool: UpstreamPool) -> None:
    server = await raw(lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!")
    key = ("127.0.0.1", server.port)
    responses = [await pool.request(*key, "GET", "/", CIMultiDict(), None) for _ in range(3)]
    for response in responses:
        await response.read()
        response.release()
    idle = pool._idle[key]
    assert len(idle) == 3
    oldest = idle[0]
    oldest.transport.close()
    oldest.connection_lost(None)  # what the event loop calls when the app closes its end
    # The dead connection left the pool at once; the next request reuses the newest one.
    again = await pool.request(*key, "GET", "/", CIMultiDict(), None)
    await again.read()
    again.release()
    assert oldest not in pool._idle[key]
    assert len(pool._idle[key]) == 2
    assert server.connections == 3


async def test_utf8_header_values_pass_both_ways_byte_for_byte(raw, pool: UpstreamPool) -> None:
    server = await raw(lambda _: "HTTP/1.1 200 OK\r\nX-Name: café\r\nContent-Length: 0\r\n\r\n".encode())
    # What aiohttp's server hands over for the raw bytes "€" in a cookie.
    sent = CIMultiDict({"Cookie": b"v=\xe2\x82\xac\xff".decode("utf-8", "surrogateescape")})
    response = await pool.request("127.0.0.1", server.port, "GET", "/", sent, None)
    response.release()
    assert b"Cookie: v=\xe2\x82\xac\xff\r\n" in server.heads[0]
    assert response.headers["X-Name"] == "café"
