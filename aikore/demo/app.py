"""Demo WebUI: a page, a websocket echo, an SSE ticker and an upload form, all offline.

It is what a new user sees through AiKore before installing a real WebUI, and the real upstream
the tests drive. Every link is relative so it works under ``/app/<name>/`` with the prefix stripped.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import html
import json
import logging
import os
import sys
from collections.abc import Sequence

from aiohttp import WSMsgType, web

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>AiKore demo · {name}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body {{ background:#14181d; color:#e6e8eb; font:15px/1.5 system-ui,sans-serif; margin:2rem; max-width:48rem }}
 section {{ border:1px solid #2c333b; border-radius:8px; padding:1rem; margin:1rem 0 }}
 code, output {{ background:#1d2229; padding:.1rem .3rem; border-radius:4px }}
</style></head>
<body>
<h1>AiKore demo app</h1>
<p>Instance <code id="name">{name}</code> on port <code>{port}</code>, GPUs <code id="gpus">{gpus}</code>.</p>
<section><h2>Websocket echo</h2>
 <input id="ws-input" value="hello" aria-label="message"> <button id="ws-send">Send</button>
 <p>Echo: <output id="ws-output"></output> <span id="ws-state">connecting</span></p></section>
<section><h2>Server-sent events</h2><p>Tick: <output id="sse-output">waiting</output></p></section>
<section><h2>Upload</h2>
 <form id="upload-form" action="upload" method="post" enctype="multipart/form-data">
  <input type="file" name="file" id="upload-file" aria-label="file"> <button>Upload</button></form>
 <p>Result: <output id="upload-output"></output></p></section>
<script>
const wsUrl = new URL("ws", location.href); wsUrl.protocol = location.protocol === "https:" ? "wss:" : "ws:";
const ws = new WebSocket(wsUrl);
ws.onopen = () => document.getElementById("ws-state").textContent = "connected";
ws.onclose = () => document.getElementById("ws-state").textContent = "closed";
ws.onmessage = (e) => document.getElementById("ws-output").textContent = e.data;
document.getElementById("ws-send").onclick = () => ws.send(document.getElementById("ws-input").value);
const es = new EventSource("events");
es.onmessage = (e) => document.getElementById("sse-output").textContent = e.data;
document.getElementById("upload-form").onsubmit = async (e) => {{
  e.preventDefault();
  const r = await fetch("upload", {{method: "POST", body: new FormData(e.target)}});
  document.getElementById("upload-output").textContent = await r.text();
}};
</script></body></html>
"""

log = logging.getLogger("aikore.demo")


async def page(request: web.Request) -> web.Response:
    env = os.environ
    text = PAGE.format(
        name=html.escape(env.get("INSTANCE_NAME", "demo")),
        port=html.escape(env.get("WEBUI_PORT", "?")),
        gpus=html.escape(env.get("CUDA_VISIBLE_DEVICES", "") or "none"),
    )
    return web.Response(text=text, content_type="text/html")


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def info(request: web.Request) -> web.Response:
    """What the app sees: its environment contract and the request as forwarded to it."""
    keys = (
        "WEBUI_PORT", "WEBUI_HOST", "INSTANCE_NAME", "INSTANCE_CONF_DIR", "INSTANCE_OUTPUT_DIR",
        "AIKORE_ROOT_PATH", "GRADIO_ROOT_PATH", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER",
        "AIKORE_DATA_DIR", "AIKORE_MODELS_DIR", "AIKORE_REBUILD_ENV",
    )
    return web.json_response({
        "env": {k: os.environ.get(k) for k in keys},
        "pid": os.getpid(),
        "cwd": os.getcwd(),
        "path": request.raw_path,
        "headers": {k: v for k, v in request.headers.items()},
    })


async def echo_ws(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=0, heartbeat=30)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type == WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


async def events(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await resp.prepare(request)
    count = int(request.query.get("count", "0") or 0)
    tick = 0
    while count == 0 or tick < count:
        tick += 1
        await resp.write(f"id: {tick}\ndata: tick {tick}\n\n".encode())
        await asyncio.sleep(float(request.query.get("interval", "1")))
    return resp


async def upload(request: web.Request) -> web.Response:
    """Stream the body (multipart file or raw), never holding it in memory."""
    digest, size = hashlib.sha256(), 0
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        async for part in reader:
            while chunk := await part.read_chunk(1 << 20):  # type: ignore[union-attr]
                digest.update(chunk)
                size += len(chunk)
    else:
        async for chunk in request.content.iter_any():
            digest.update(chunk)
            size += len(chunk)
    log.info("upload received: %d bytes", size)
    return web.json_response({"bytes": size, "sha256": digest.hexdigest()})


def create_demo_app() -> web.Application:
    app = web.Application(client_max_size=0)
    app.router.add_get("/", page)
    app.router.add_get("/health", health)
    app.router.add_get("/info", info)
    app.router.add_get("/ws", echo_ws)
    app.router.add_get("/events", events)
    app.router.add_post("/upload", upload)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aikore.demo", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("WEBUI_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("WEBUI_PORT", "7860")))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(message)s")
    print(json.dumps({"demo": "starting", "host": args.host, "port": args.port}), flush=True)
    web.run_app(create_demo_app(), host=args.host, port=args.port, print=lambda m: print(m, flush=True))
    return 0
