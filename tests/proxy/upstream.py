"""A real upstream app exercising everything a proxied WebUI does; the tests run it on a socket."""

from __future__ import annotations

import asyncio
import gzip
import hashlib

from aiohttp import WSMsgType, web

GZIP_TEXT = b"hello, compressed world\n" * 200
GZIP_BODY = gzip.compress(GZIP_TEXT)

CLOSES: web.AppKey[list[tuple[int, str]]] = web.AppKey("closes", list)
SSE_GATE: web.AppKey[asyncio.Event] = web.AppKey("sse_gate", asyncio.Event)
# Downloads whose reader went away before the end (the proxy closed the connection).
DOWNLOADS_CUT: web.AppKey[list[int]] = web.AppKey("downloads_cut", list)


async def echo(request: web.Request) -> web.Response:
    """Everything the upstream saw, as JSON."""
    body = await request.read()
    return web.json_response(
        {
            "method": request.method,
            "raw_path": request.raw_path,
            "headers": [[k, v] for k, v in request.headers.items()],
            "body_len": len(body),
            "version": f"{request.version.major}.{request.version.minor}",
        }
    )


async def upload(request: web.Request) -> web.Response:
    """Hash a streamed body without keeping it."""
    digest = hashlib.sha256()
    size = 0
    async for chunk in request.content.iter_any():
        digest.update(chunk)
        size += len(chunk)
    return web.json_response(
        {
            "size": size,
            "sha256": digest.hexdigest(),
            "content_length": request.headers.get("Content-Length"),
            "transfer_encoding": request.headers.get("Transfer-Encoding"),
        }
    )


async def download(request: web.Request) -> web.StreamResponse:
    """A deterministic body of ?size= bytes, streamed with a Content-Length."""
    size = int(request.query["size"])
    block = bytes(range(256)) * 256
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    response.content_length = size
    await response.prepare(request)
    left = size
    try:
        while left:
            piece = block[: min(left, len(block))]
            await response.write(piece)
            left -= len(piece)
    except (ConnectionError, asyncio.CancelledError):
        # A write to the closed connection fails, or (test servers) the handler is cancelled.
        request.app[DOWNLOADS_CUT].append(size - left)
        raise
    await response.write_eof()
    return response


async def utf8(request: web.Request) -> web.Response:
    """A UTF-8 header value both ways: echoes the X-Name it got, answers with its own."""
    return web.Response(text=request.headers.get("X-Name", ""), headers={"X-Name": "café ünïcode"})


async def redirect(request: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": request.query["to"]})


async def gzipped(request: web.Request) -> web.Response:
    return web.Response(
        body=GZIP_BODY,
        headers={"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"},
    )


async def cookies(request: web.Request) -> web.Response:
    response = web.Response(text="cookies", content_type="text/plain", charset="iso-8859-1")
    response.set_cookie("a", "1")
    response.set_cookie("b", "2")
    if "big" in request.query:
        response.set_cookie("big", "x" * 20000)
    return response


async def hop(request: web.Request) -> web.Response:
    return web.Response(
        text="hop",
        headers={"X-Private": "secret", "Connection": "X-Private", "Keep-Alive": "timeout=5"},
    )


async def status(request: web.Request) -> web.Response:
    code = int(request.match_info["code"])
    headers = {"ETag": '"v1"'}
    return web.Response(status=code, headers=headers)


async def head_sized(request: web.Request) -> web.Response:
    if request.method == "HEAD":
        return web.Response(headers={"Content-Length": "12345", "Content-Type": "text/plain"})
    return web.Response(text="x" * 12345)


async def sse(request: web.Request) -> web.StreamResponse:
    """One event, then wait for the test's go-ahead before the second: proves no buffering."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(b"data: first\n\n")
    await request.app[SSE_GATE].wait()
    await response.write(b"data: second\n\n")
    await response.write_eof()
    return response


async def hold(request: web.Request) -> web.StreamResponse:
    """A long-lived stream (an SSE client that never leaves) until the gate opens."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(b"data: open\n\n")
    await request.app[SSE_GATE].wait()
    await response.write_eof()
    return response


async def slow(request: web.Request) -> web.StreamResponse:
    """A body that trickles out over a few seconds."""
    response = web.StreamResponse()
    await response.prepare(request)
    for i in range(int(request.query.get("n", "5"))):
        await response.write(f"{i}\n".encode())
        await asyncio.sleep(float(request.query.get("gap", "0.5")))
    await response.write_eof()
    return response


async def truncated(request: web.Request) -> web.StreamResponse:
    """Promise a megabyte, send a fraction, then drop the connection."""
    response = web.StreamResponse()
    if request.query.get("mode") != "chunked":
        response.content_length = 1024 * 1024
    await response.prepare(request)
    await response.write(b"x" * 100_000)
    await asyncio.sleep(0.05)
    assert request.transport is not None
    request.transport.abort()
    return response


async def ws(request: web.Request) -> web.StreamResponse:
    """Echo frames; '!close CODE REASON' closes with that code; records the client's close."""
    socket = web.WebSocketResponse(protocols=("chat", "superchat"), max_msg_size=0)
    await socket.prepare(request)
    while True:
        msg = await socket.receive()
        if msg.type is WSMsgType.TEXT and msg.data.startswith("!close "):
            _, code, reason = msg.data.split(" ", 2)
            await socket.close(code=int(code), message=reason.encode())
            break
        if msg.type is WSMsgType.TEXT and msg.data == "!die":
            # The app crashes: its connection drops without a close frame.
            assert request.transport is not None
            request.transport.abort()
            break
        if msg.type is WSMsgType.TEXT:
            await socket.send_str(msg.data)
        elif msg.type is WSMsgType.BINARY:
            await socket.send_bytes(msg.data)
        elif msg.type is WSMsgType.CLOSE:
            request.app[CLOSES].append((msg.data, msg.extra or ""))
            break
        else:
            break
    return socket


async def ws_headers(request: web.Request) -> web.StreamResponse:
    """Send the handshake headers the upstream saw as the first message."""
    socket = web.WebSocketResponse()
    await socket.prepare(request)
    await socket.send_json({"headers": [[k, v] for k, v in request.headers.items()]})
    await socket.close()
    return socket


async def ws_refused(request: web.Request) -> web.Response:
    return web.Response(status=403, text="<script>no</script>")


async def closes(request: web.Request) -> web.Response:
    return web.json_response(request.app[CLOSES])


def make_upstream() -> web.Application:
    """The upstream app with every route the proxy tests use."""
    app = web.Application()
    app[CLOSES] = []
    app[SSE_GATE] = asyncio.Event()
    app[DOWNLOADS_CUT] = []
    r = app.router
    r.add_route("*", "/echo/{tail:.*}", echo)
    r.add_post("/upload", upload)
    r.add_get("/download", download)
    r.add_get("/redirect", redirect)
    r.add_get("/utf8", utf8)
    r.add_get("/gzip", gzipped)
    r.add_get("/cookies", cookies)
    r.add_get("/hop", hop)
    r.add_get("/status/{code}", status)
    r.add_route("*", "/head", head_sized)
    r.add_get("/sse", sse)
    r.add_get("/hold", hold)
    r.add_get("/slow", slow)
    r.add_get("/truncated", truncated)
    r.add_get("/ws", ws)
    r.add_get("/ws-headers", ws_headers)
    r.add_get("/ws-refused", ws_refused)
    r.add_get("/closes", closes)
    # What a keep-prefix app (JupyterLab with base_url) serves: everything under its mount.
    r.add_get("/app/kept/redirect", redirect)
    r.add_route("*", "/app/{name}/{tail:.*}", echo)
    return app
