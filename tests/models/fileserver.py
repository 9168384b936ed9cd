"""A loopback HTTP server for download tests, run in a thread of its own (usable from sync tests).

It serves files with Range support, drops a connection mid-way, serves wrong bytes, answers
errors, claims a file too big for any disk, and answers like Hugging Face's ``resolve`` endpoint
and CivitAI's API (redirects to a file host, ``Content-Disposition`` names, sha256 metadata).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from dataclasses import dataclass, field

from aiohttp import web

HF_TOKEN = "hf-test-token"
CIVITAI_KEY = "civitai-test-key"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class FileServer:
    files: dict[str, bytes] = field(default_factory=dict)
    # Pause between 64 KiB pieces on /slow/ (so a browser or a restart can catch it mid-way).
    slow_pause: float = 0.02
    ranges: list[str | None] = field(default_factory=list)
    auth_seen: list[str | None] = field(default_factory=list)
    drops: set[str] = field(default_factory=set)
    # Where Hugging Face redirects file downloads (another server: a different origin).
    cdn_base: str | None = None
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(self, name: str, size: int) -> bytes:
        data = os.urandom(size)
        self.files[name] = data
        return data

    def start(self) -> FileServer:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        assert ready.wait(30), "file server did not start"
        return self

    def stop(self) -> None:
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)  # type: ignore[union-attr]
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(30)

    def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._open())
        ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _open(self) -> None:
        app = web.Application()
        r = app.router
        r.add_get("/files/{name}", self.serve_file)
        r.add_get("/slow/{name}", self.serve_slow)
        r.add_get("/drop/{name}", self.serve_dropping)
        r.add_get("/norange-drop/{name}", self.serve_dropping_without_ranges)
        r.add_get("/wrong/{name}", self.serve_wrong)
        r.add_get("/status/{code}", self.serve_status)
        r.add_get("/huge", self.serve_huge)
        r.add_get("/cdn/{name}", self.serve_cdn)
        r.add_get("/named/{name}", self.serve_named)
        r.add_get("/flaky/{name}", self.serve_flaky)
        r.add_route("*", "/{owner}/{repo}/resolve/{rev}/{name}", self.hf_resolve)
        r.add_get("/api/v1/models/{id}", self.civitai_model)
        r.add_get("/api/v1/model-versions/{id}", self.civitai_version)
        r.add_get("/api/download/models/{id}", self.civitai_download)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def _data(self, request: web.Request) -> bytes:
        name = request.match_info["name"]
        if name not in self.files:
            raise web.HTTPNotFound()
        return self.files[name]

    async def _send(self, request: web.Request, data: bytes, pause: float = 0.0, cut_at: int | None = None,
                    headers: dict[str, str] | None = None) -> web.StreamResponse:
        """``data`` with Range support; ``cut_at`` closes the connection after that many bytes of the body."""
        self.ranges.append(request.headers.get("Range"))
        start = 0
        status = 200
        extra = dict(headers or {})
        if rng := request.headers.get("Range"):
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                return web.Response(status=416, headers={"Content-Range": f"bytes */{len(data)}"})
            status = 206
            extra["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        resp = web.StreamResponse(status=status, headers={"Accept-Ranges": "bytes", **extra})
        resp.content_length = len(body)
        await resp.prepare(request)
        sent = 0
        for i in range(0, len(body), 65536):
            piece = body[i : i + 65536]
            if cut_at is not None and sent + len(piece) > cut_at:
                await resp.write(piece[: cut_at - sent])
                await asyncio.sleep(0.05)
                assert request.transport is not None
                request.transport.close()
                return resp
            await resp.write(piece)
            sent += len(piece)
            if pause:
                await asyncio.sleep(pause)
        await resp.write_eof()
        return resp

    async def serve_file(self, request: web.Request) -> web.StreamResponse:
        return await self._send(request, self._data(request))

    async def serve_slow(self, request: web.Request) -> web.StreamResponse:
        return await self._send(request, self._data(request), pause=self.slow_pause)

    async def serve_dropping(self, request: web.Request) -> web.StreamResponse:
        """The first answer for each file stops half-way; later ones (with Range) complete."""
        name = request.match_info["name"]
        data = self._data(request)
        if name not in self.drops:
            self.drops.add(name)
            return await self._send(request, data, cut_at=len(data) // 2)
        return await self._send(request, data)

    async def serve_dropping_without_ranges(self, request: web.Request) -> web.StreamResponse:
        """Like /drop/, but Range is ignored: every answer is the whole file from byte 0 (a 200)."""
        name = request.match_info["name"]
        data = self._data(request)
        request = request.clone(headers={k: v for k, v in request.headers.items() if k != "Range"})
        if name not in self.drops:
            self.drops.add(name)
            return await self._send(request, data, cut_at=len(data) // 2)
        return await self._send(request, data)

    async def serve_wrong(self, request: web.Request) -> web.StreamResponse:
        data = self._data(request)
        return await self._send(request, bytes(b ^ 0xFF for b in data[:16]) + data[16:])

    async def serve_status(self, request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="no")

    async def serve_huge(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_length = 10**15
        await resp.prepare(request)
        try:
            for _ in range(100):
                await resp.write(b"\0" * 65536)
                await asyncio.sleep(0.05)
        except (ConnectionError, RuntimeError):
            pass
        return resp

    async def serve_cdn(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.auth_seen.append(request.headers.get("Authorization"))
        return await self._send(
            request, self._data(request), headers={"Content-Disposition": f'attachment; filename="{name}"'}
        )

    async def serve_flaky(self, request: web.Request) -> web.StreamResponse:
        """503 the first time for each file, then the file."""
        name = request.match_info["name"]
        if name not in self.drops:
            self.drops.add(name)
            return web.Response(status=503, text="busy")
        return await self._send(request, self._data(request))

    async def serve_named(self, request: web.Request) -> web.StreamResponse:
        """A download link whose URL says nothing: the name is in an RFC 6266 ``filename*``."""
        return await self._send(
            request,
            self._data(request),
            headers={"Content-Disposition": "attachment; filename*=UTF-8''Real%20Name%20v2.safetensors"},
        )

    async def hf_resolve(self, request: web.Request) -> web.StreamResponse:
        """Like huggingface.co: gated repos need the token; files redirect to a CDN, sha256 in X-Linked-Etag."""
        self.auth_seen.append(request.headers.get("Authorization"))
        if request.match_info["owner"] == "gated" and request.headers.get("Authorization") != f"Bearer {HF_TOKEN}":
            return web.Response(status=401, text="gated")
        if request.match_info["name"] == "too-big.safetensors":
            return web.Response(status=302, headers={"X-Linked-Size": str(10**15), "Location": f"{self.base}/nothing"})
        data = self._data(request)
        headers = {
            "Location": f"{self.cdn_base or self.base}/cdn/{request.match_info['name']}",
            "X-Linked-Etag": f'"{sha256(data)}"',
            "X-Linked-Size": str(len(data)),
            "ETag": '"abc"',
        }
        return web.Response(status=302, headers=headers)

    async def civitai_model(self, request: web.Request) -> web.Response:
        return web.json_response({"id": int(request.match_info["id"]), "modelVersions": [{"id": 555}, {"id": 444}]})

    async def civitai_version(self, request: web.Request) -> web.Response:
        version = int(request.match_info["id"])
        if version not in (555, 444):
            return web.json_response({"error": "no"}, status=404)
        data = self.files["civitai.safetensors"]
        return web.json_response(
            {
                "id": version,
                "files": [
                    {"name": "preview.json", "primary": False, "downloadUrl": f"{self.base}/nothing"},
                    {
                        "name": "civitai.safetensors",
                        "primary": True,
                        "sizeKB": len(data) / 1024,
                        "hashes": {"SHA256": sha256(data).upper()},
                        "downloadUrl": f"{self.base}/api/download/models/{version}",
                    },
                ],
            }
        )

    async def civitai_download(self, request: web.Request) -> web.Response:
        self.auth_seen.append(request.headers.get("Authorization"))
        if request.headers.get("Authorization") != f"Bearer {CIVITAI_KEY}":
            return web.Response(status=401, text="key needed")
        # CivitAI redirects to a signed storage URL; the name comes from Content-Disposition there.
        return web.Response(status=307, headers={"Location": f"{self.base}/cdn/civitai.safetensors"})
