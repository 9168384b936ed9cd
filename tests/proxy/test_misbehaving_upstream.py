"""Pool correctness against apps that break HTTP: on the main port and on a public port.

A raw upstream answers exactly the bytes a test gives. An upstream connection that delivered more
than its answer (a second response nobody asked for, trailing garbage) is out of step with the
app: it is closed, never reused, and its extra bytes never reach another request. An invalid
chunk-size line aborts that response instead of being read some other way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

import proxy

pytestmark = pytest.mark.asyncio

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@dataclass
class RawUpstream:
    """Answers each request head with ``answers[n]`` (n counts requests over all connections)."""

    answers: list[bytes]
    connections: int = 0
    requests: int = 0
    server: asyncio.Server | None = field(default=None, repr=False)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                answer = self.answers[min(self.requests, len(self.answers) - 1)]
                self.requests += 1
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])


@dataclass
class Front:
    """Where a browser reaches the upstream: the main port's /app/raw/ or the public port's /."""

    base: str
    upstream: RawUpstream


@pytest_asyncio.fixture(params=["main", "public"])
async def front(request: pytest.FixtureRequest, aiohttp_server: Callable[..., asyncio.Future]) -> AsyncIterator[
    Callable[[list[bytes]], asyncio.Future[Front]]
]:
    cleanups: list[Callable[[], asyncio.Future[None]]] = []

    async def make(answers: list[bytes]) -> Front:
        upstream = RawUpstream(answers)
        upstream.server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0)
        table = proxy.RouteTable()
        session = proxy.client_session()
        pool = proxy.UpstreamPool()
        if request.param == "main":
            table.set("raw", port=upstream.port, state="running")
            app = web.Application()
            proxy.add_app_routes(app.router, proxy.path_handler(table, session, pool=pool))
            server = await aiohttp_server(app)
            base = str(server.make_url("/app/raw"))
            listeners = None
        else:
            probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
            public_port = int(probe.sockets[0].getsockname()[1])
            probe.close()
            await probe.wait_closed()
            table.set("raw", port=upstream.port, state="running", public_port=public_port)
            listeners = proxy.PublicListeners(table, session, pool=pool)
            await listeners.sync()
            base = f"http://127.0.0.1:{public_port}"

        async def cleanup() -> None:
            if listeners is not None:
                await listeners.close_all()
            await pool.close()
            await session.close()
            upstream.server.close()

        cleanups.append(cleanup)
        return Front(base, upstream)

    yield make  # type: ignore[misc]
    for cleanup in cleanups:
        await cleanup()


async def _get(base: str, path: str = "/x") -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as client, client.get(base + path) as resp:
        return resp.status, await resp.read()


@pytest.mark.parametrize(
    "extra",
    [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nevil!", b"GARBAGE\r\n\r\n", b"\x00\x01junk"],
    ids=["second-response", "trailing-garbage", "binary-junk"],
)
async def test_bytes_beyond_an_answer_close_the_connection_and_reach_no_one(front, extra: bytes) -> None:
    f = await front([OK + extra, b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"])
    assert await _get(f.base) == (200, b"ok")
    # The next request gets its own answer, on a new connection: the polluted one was not reused.
    assert await _get(f.base) == (200, b"next")
    assert f.upstream.connections == 2


async def test_a_second_response_sent_later_is_never_handed_to_the_next_request(front) -> None:
    # The extra answer arrives in its own packet, after the first was relayed.
    f = await front([OK, b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"])
    assert await _get(f.base) == (200, b"ok")
    assert await _get(f.base) == (200, b"next")
    assert f.upstream.connections == 1, "a well-behaved connection is reused"


async def test_concurrent_requests_each_get_their_own_answer(front) -> None:
    f = await front([OK + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nevil!"])
    results = await asyncio.gather(*(_get(f.base, f"/r{i}") for i in range(8)))
    assert results == [(200, b"ok")] * 8


@pytest.mark.parametrize("size", [b"-5", b"0x5", b"5_0", b"zz", b"+5", b" "], ids=repr)
async def test_an_invalid_chunk_size_aborts_the_response(front, size: bytes) -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n" + size + b"\r\nhello\r\n0\r\n\r\n"
    f = await front([chunked, b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"])
    with pytest.raises(aiohttp.ClientPayloadError):
        await _get(f.base)
    # The broken connection is gone; the next request is answered on a fresh one.
    assert await _get(f.base) == (200, b"next")
    assert f.upstream.connections == 2
