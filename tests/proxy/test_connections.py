"""One browser connection to the proxy: keep-alive, pipelining, framing, unusual requests, big bodies.

The proxy app (the /app/ routes beside one of the app's own) listens on a real socket; a real
upstream app answers. Raw sockets show exactly what the browser side receives.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import psutil
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

import proxy

pytestmark = pytest.mark.asyncio


class Front:
    def __init__(self, url: str, table: proxy.RouteTable) -> None:
        self.url = url
        self.table = table
        self.port = int(url.rsplit(":", 1)[1])

    @property
    def forwarded(self) -> int:
        """Requests that reached an app, over every route."""
        return sum(route.requests for route in self.table)


async def _own(request: web.Request) -> web.Response:
    return web.Response(text="aiohttp's own route")


@pytest_asyncio.fixture
async def front(
    aiohttp_server: Callable[..., Awaitable[TestServer]], upstream: TestServer, closed_port: int
) -> AsyncIterator[Front]:
    table = proxy.RouteTable()
    table.set("demo", port=upstream.port, state="running")
    table.set("kept", port=upstream.port, state="running", mode=proxy.KEEP_PREFIX)
    table.set("off", port=upstream.port, state="stopped")
    table.set("boot", port=upstream.port, state="starting")
    table.set("gone", port=closed_port, state="running")
    session = proxy.client_session()
    pool = proxy.UpstreamPool()
    app = web.Application()
    proxy.add_app_routes(app.router, proxy.path_handler(table, session, pool=pool))
    app.router.add_get("/own", _own)
    try:
        server = await aiohttp_server(app, **proxy.SERVER_HANDLER_ARGS)
        yield Front(str(server.make_url("")).rstrip("/"), table)
    finally:
        await pool.close()
        await session.close()


async def _read_response(reader: asyncio.StreamReader, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response off a raw socket: status, headers (lower-case names), body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    lines = head.decode("utf-8").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if method == "HEAD" or status in (204, 304):
        return status, headers, b""
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return status, headers, body
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    return status, headers, await reader.readexactly(int(headers.get("content-length", "0")))


def _get(path: str, port: int, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n".encode()


async def test_a_plain_request_is_forwarded_with_its_raw_path(front: Front, client: aiohttp.ClientSession) -> None:
    async with client.get(f"{front.url}/app/demo/echo/x?b=2&a=1") as resp:
        seen = await resp.json()
    assert seen["raw_path"] == "/echo/x?b=2&a=1"
    assert front.forwarded == 1


@pytest.mark.parametrize(
    ("path", "status"),
    [("/own", 200), ("/app/nope/", 404), ("/app/off/", 503), ("/app/boot/echo/", 200), ("/app/demo", 307)],
)
async def test_each_route_state_gets_its_answer(
    front: Front, client: aiohttp.ClientSession, path: str, status: int
) -> None:
    async with client.get(front.url + path, allow_redirects=False) as resp:
        assert resp.status == status


async def test_refused_upstream_is_a_fixed_502(front: Front, client: aiohttp.ClientSession) -> None:
    async with client.get(f"{front.url}/app/gone/<script>") as resp:
        assert resp.status == 502
        text = await resp.text()
    assert "<script>" not in text
    assert text == "502 Bad Gateway: the app did not answer\n"
    assert front.forwarded == 1


@pytest.mark.parametrize(
    "request_text",
    [
        "GET /app/demo/echo/ HTTP/1.0\r\nHost: h\r\n\r\n",
        "POST /app/demo/echo/ HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
        "POST /app/demo/echo/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        "GET /app/demo/../demo/echo/ HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /app/de%6do/echo/ HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /app/demo/echo/ HTTP/1.1\r\n\r\n",
    ],
    ids=["http10", "expect", "chunked-upload", "dot-segment", "escaped-name", "no-host"],
)
async def test_unusual_requests_are_answered(front: Front, request_text: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
    try:
        writer.write(request_text.encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n"), 30)
        assert head.split(b" ")[1] in (b"100", b"200", b"400", b"404")
    finally:
        writer.close()


async def test_a_chunked_upload_arrives_whole(front: Front, client: aiohttp.ClientSession) -> None:
    async def pieces() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    async with client.post(f"{front.url}/app/demo/upload", data=pieces()) as resp:
        seen = await resp.json()
    assert seen["size"] == 10_000


async def test_a_websocket_upgrade_is_relayed(front: Front, client: aiohttp.ClientSession) -> None:
    async with client.ws_connect(f"{front.url}/app/demo/ws") as ws:
        await ws.send_str("ping")
        assert (await ws.receive(timeout=30)).data == "ping"


async def test_keep_alive_mixes_app_and_own_routes(front: Front) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
    try:
        writer.write(_get("/app/demo/echo/one", front.port))
        status, _, body = await _read_response(reader)
        assert status == 200 and b"/echo/one" in body
        writer.write(_get("/app/demo/echo/two", front.port))
        status, _, body = await _read_response(reader)
        assert status == 200 and b"/echo/two" in body
        writer.write(_get("/own", front.port))
        status, _, body = await _read_response(reader)
        assert status == 200 and body == b"aiohttp's own route"
        writer.write(_get("/app/demo/echo/three", front.port))
        status, _, body = await _read_response(reader)
        assert status == 200 and b"/echo/three" in body
    finally:
        writer.close()
    assert front.forwarded == 3


async def test_pipelined_requests_are_answered_in_order(front: Front) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
    post = (
        f"POST /app/demo/echo/posted HTTP/1.1\r\nHost: 127.0.0.1:{front.port}\r\nContent-Length: 5\r\n\r\nhello"
    ).encode()
    try:
        writer.write(
            _get("/app/demo/echo/1", front.port) + post + _get("/app/demo/status/204", front.port)
            + _get("/app/demo/echo/3", front.port) + _get("/own", front.port)
        )
        results = [await _read_response(reader) for _ in range(5)]
    finally:
        writer.close()
    assert [r[0] for r in results] == [200, 200, 204, 200, 200]
    assert b"/echo/1" in results[0][2]
    assert b'"body_len": 5' in results[1][2] and b"/echo/posted" in results[1][2]
    assert b"/echo/3" in results[3][2]
    assert results[4][2] == b"aiohttp's own route"
    assert front.forwarded == 4


async def test_a_response_of_unknown_length_is_chunked_to_the_browser(front: Front) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
    try:
        writer.write(_get("/app/demo/slow?n=3&gap=0.05", front.port))
        status, headers, body = await _read_response(reader)
        # The connection stays usable after a chunked body.
        writer.write(_get("/app/demo/echo/after", front.port))
        assert (await _read_response(reader))[0] == 200
    finally:
        writer.close()
    assert status == 200
    assert headers["transfer-encoding"] == "chunked"
    assert body == b"0\n1\n2\n"


async def test_connection_close_is_honoured(front: Front) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
    try:
        writer.write(_get("/app/demo/echo/", front.port, "Connection: close\r\n"))
        status, headers, _ = await _read_response(reader)
        assert await asyncio.wait_for(reader.read(), 30) == b""
    finally:
        writer.close()
    assert status == 200
    assert headers["connection"] == "close"


async def test_route_metrics_count_the_traffic(front: Front, client: aiohttp.ClientSession) -> None:
    route = front.table.get("demo")
    assert route is not None
    async with client.post(f"{front.url}/app/demo/upload", data=b"y" * 300_000) as resp:
        assert (await resp.json())["size"] == 300_000
    async with client.get(f"{front.url}/app/demo/download", params={"size": "1000000"}) as resp:
        assert len(await resp.read()) == 1_000_000
    assert route.requests == 2
    assert route.bytes_in == 300_000
    assert route.bytes_out >= 1_000_000
    assert route.last_activity is not None
    assert front.forwarded == 2


async def _peak_rss_while(work: Callable[[], asyncio.Future | object]) -> int:
    """How far this process's RSS rose above its start while ``work`` ran (sampled every 20 ms)."""
    me = psutil.Process()
    start = peak = me.memory_info().rss
    task = asyncio.ensure_future(work())  # type: ignore[arg-type]
    while not task.done():
        peak = max(peak, me.memory_info().rss)
        await asyncio.sleep(0.02)
    await task
    return peak - start


async def test_large_bodies_stream_both_ways_in_flat_memory(front: Front, client: aiohttp.ClientSession) -> None:
    size = 128 * 1024 * 1024
    block = bytes(range(256)) * 4096

    async def upload() -> None:
        async def pieces() -> AsyncIterator[bytes]:
            for _ in range(size // len(block)):
                yield block

        digest = hashlib.sha256()
        for _ in range(size // len(block)):
            digest.update(block)
        headers = {"Content-Length": str(size)}
        async with client.post(f"{front.url}/app/demo/upload", data=pieces(), headers=headers) as resp:
            seen = await resp.json()
        assert seen["size"] == size
        assert seen["sha256"] == digest.hexdigest()
        assert seen["content_length"] == str(size)

    async def download() -> None:
        got = 0
        async with client.get(f"{front.url}/app/demo/download", params={"size": str(size)}) as resp:
            async for chunk in resp.content.iter_any():
                got += len(chunk)
        assert got == size

    grew_up = await _peak_rss_while(upload)
    grew_down = await _peak_rss_while(download)
    # Client, proxy and upstream share this process; 128 MiB kept anywhere would show.
    assert grew_up < 48 * 1024 * 1024, grew_up
    assert grew_down < 48 * 1024 * 1024, grew_down
    assert front.forwarded == 2


@pytest_asyncio.fixture
async def raw_upstream(front: Front) -> AsyncIterator[Callable[[bytes, bool], Awaitable[str]]]:
    """``await raw_upstream(answer, close_after)``: a route to a bare socket server that answers
    every request with exactly ``answer``, closing the connection afterwards when asked."""
    servers: list[asyncio.Server] = []

    async def make(answer: bytes, close_after: bool) -> str:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while await reader.readuntil(b"\r\n\r\n"):
                    writer.write(answer)
                    await writer.drain()
                    if close_after:
                        break
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        servers.append(server)
        name = f"raw{len(servers)}"
        front.table.set(name, port=server.sockets[0].getsockname()[1], state="running")
        return name

    yield make
    for server in servers:
        server.close()


async def test_an_app_closing_kept_alive_connections_costs_no_request(
    front: Front, client: aiohttp.ClientSession, raw_upstream: Callable[[bytes, bool], Awaitable[str]]
) -> None:
    # Claims keep-alive, then hangs up: the next request finds a dead pooled link and retries.
    name = await raw_upstream(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", True)
    for _ in range(20):
        async with client.get(f"{front.url}/app/{name}/") as resp:
            assert resp.status == 200
            assert await resp.read() == b"ok"
    assert front.forwarded == 20


async def test_interim_answers_are_skipped(
    front: Front, client: aiohttp.ClientSession, raw_upstream: Callable[[bytes, bool], Awaitable[str]]
) -> None:
    answer = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal"
    name = await raw_upstream(answer, False)
    async with client.get(f"{front.url}/app/{name}/") as resp:
        assert resp.status == 200
        assert await resp.read() == b"real"


async def test_a_body_ended_by_close_reaches_the_browser_chunked_and_whole(
    front: Front, raw_upstream: Callable[[bytes, bool], Awaitable[str]]
) -> None:
    name = await raw_upstream(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", True)
    reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
    try:
        writer.write(_get(f"/app/{name}/", front.port))
        status, headers, body = await _read_response(reader)
        # The browser's connection goes on although the app's ended.
        writer.write(_get("/app/demo/echo/next", front.port))
        assert (await _read_response(reader))[0] == 200
    finally:
        writer.close()
    assert status == 200
    assert headers["transfer-encoding"] == "chunked"
    assert body == b"until the end"


async def test_an_app_that_hangs_up_without_answering_is_a_502(
    front: Front, client: aiohttp.ClientSession, raw_upstream: Callable[[bytes, bool], Awaitable[str]]
) -> None:
    name = await raw_upstream(b"", True)
    async with client.get(f"{front.url}/app/{name}/") as resp:
        assert resp.status == 502
