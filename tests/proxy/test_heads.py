"""Request heads are bounded in size and time; what follows a complete head is not.

A GuardedRunner (as AiKore's ports run) with a short deadline, driven with raw sockets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest_asyncio
from aiohttp import web

import proxy

DEADLINE = 1.0
MAX_HEAD = 16 * 1024

Connect = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


async def _upload(request: web.Request) -> web.Response:
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
    return web.Response(text=str(size))


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _ws(request: web.Request) -> web.StreamResponse:
    socket = web.WebSocketResponse()
    await socket.prepare(request)
    async for msg in socket:
        await socket.send_str(msg.data)
    return socket


@pytest_asyncio.fixture
async def connect() -> AsyncIterator[Connect]:
    app = web.Application()
    app.router.add_get("/", _ok)
    app.router.add_post("/upload", _upload)
    app.router.add_get("/ws", _ws)
    runner = proxy.GuardedRunner(app, head_timeout=DEADLINE, max_head=MAX_HEAD, **proxy.SERVER_HANDLER_ARGS)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    writers: list[asyncio.StreamWriter] = []

    async def open_one() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writers.append(writer)
        return reader, writer

    try:
        yield open_one
    finally:
        for writer in writers:
            writer.close()
        await runner.cleanup()


async def _closed_with(reader: asyncio.StreamReader, within: float) -> bytes:
    """Everything the server sent before closing the connection (fails if it stays open)."""
    return await asyncio.wait_for(reader.read(), within)


async def test_a_trickled_head_is_answered_408_and_closed_at_the_deadline(connect: Connect) -> None:
    reader, writer = await connect()
    started = time.monotonic()
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")

    async def trickle() -> None:
        for _ in range(100):
            writer.write(b"X")
            await asyncio.sleep(DEADLINE / 5)

    feeding = asyncio.create_task(trickle())
    try:
        answer = await _closed_with(reader, DEADLINE * 5)
    finally:
        feeding.cancel()
    assert answer.startswith(b"HTTP/1.1 408")
    assert DEADLINE * 0.9 <= time.monotonic() - started < DEADLINE * 3


async def test_a_connection_that_sends_nothing_is_closed_at_the_deadline(connect: Connect) -> None:
    reader, _ = await connect()
    assert await _closed_with(reader, DEADLINE * 5) == b""


async def test_a_head_past_the_bound_is_answered_431_and_closed(connect: Connect) -> None:
    reader, writer = await connect()
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
    for i in range(MAX_HEAD // 1000 + 2):
        writer.write(f"X-H{i}: {'v' * 1000}\r\n".encode())
    answer = await _closed_with(reader, DEADLINE * 3)
    assert answer.startswith(b"HTTP/1.1 431")


async def test_a_head_within_the_bound_is_served(connect: Connect) -> None:
    reader, writer = await connect()
    cookie = "; ".join(f"c{i}={'v' * 4000}" for i in range(3))
    writer.write(f"GET / HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n".encode())
    answer = await _closed_with(reader, DEADLINE * 3)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok")


async def test_a_slow_body_after_a_complete_head_is_not_cut(connect: Connect) -> None:
    reader, writer = await connect()
    writer.write(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 40000\r\nConnection: close\r\n\r\n")
    for _ in range(8):  # four deadlines' worth of trickling, and more than MAX_HEAD bytes
        writer.write(b"b" * 5000)
        await asyncio.sleep(DEADLINE / 2)
    answer = await _closed_with(reader, DEADLINE * 3)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"40000")


async def test_each_head_of_a_kept_alive_connection_gets_the_deadline(connect: Connect) -> None:
    reader, writer = await connect()
    for _ in range(3):
        # Complete requests, spaced by more than a deadline in all: only heads are timed.
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await reader.readuntil(b"ok")).startswith(b"HTTP/1.1 200")
        await asyncio.sleep(DEADLINE / 2)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    assert (await _closed_with(reader, DEADLINE * 5)).startswith(b"HTTP/1.1 408")
    assert time.monotonic() - started < DEADLINE * 3


async def test_a_websocket_outlives_the_deadline(connect: Connect) -> None:
    reader, writer = await connect()
    writer.write(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    await asyncio.sleep(DEADLINE * 2)
    # A masked text frame "hi" (RFC 6455 5.7's example mask), echoed back unmasked.
    mask = b"\x37\xfa\x21\x3d"
    writer.write(b"\x81\x82" + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(b"hi")))
    assert await asyncio.wait_for(reader.readexactly(4), DEADLINE) == b"\x81\x02hi"
