"""Multi-GB uploads and downloads stream through a real aikore in flat memory."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import psutil

from tests.helpers import AikoreProcess

SIZE = 2 * 1024**3
BLOCK = 1024 * 1024
# AiKore's own memory may grow this much while gigabytes pass through it (buffers, allocator noise).
RSS_GROWTH = 96 * 1024**2


class PeakRss:
    """Samples a process's resident memory in the background; ``peak`` is the highest seen."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.base = self.process.memory_info().rss
        self.peak = self.base
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> PeakRss:
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.process.memory_info().rss)
            await asyncio.sleep(0.05)


async def _generated(digest: Any) -> AsyncIterator[bytes]:
    """SIZE bytes made on the fly (never held whole), hashed as they are sent."""
    seed = os.urandom(BLOCK)
    for i in range(SIZE // BLOCK):
        block = i.to_bytes(8, "little") + seed[8:]
        digest.update(block)
        yield block


async def test_two_gib_upload_then_download_and_zip_in_flat_memory(
    aikore_process: Callable[..., AikoreProcess],
) -> None:
    server = aikore_process()
    assert server.proc is not None
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(server.base, timeout=timeout) as http:
        resp = await http.post("/api/instances", json={"name": "big", "blueprint": "demo"})
        assert resp.status == 201, await resp.text()
        root = f"/api/files/{(await resp.json())['id']}"
        sent = hashlib.sha256()
        started = time.monotonic()
        async with PeakRss(server.proc.pid) as rss:
            resp = await http.put(f"{root}/upload", params={"path": "output/big.bin"}, data=_generated(sent))
            assert resp.status == 201, await resp.text()
            assert (await resp.json())["size"] == SIZE
            upload_s = time.monotonic() - started

            got = hashlib.sha256()
            size = 0
            async with http.get(f"{root}/download", params={"path": "output/big.bin"}) as resp:
                assert resp.status == 200
                async for chunk in resp.content.iter_chunked(BLOCK):
                    got.update(chunk)
                    size += len(chunk)
            assert size == SIZE and got.hexdigest() == sent.hexdigest()

            zipped = 0
            tail = b""
            async with http.get(f"{root}/download", params={"path": "output"}) as resp:
                assert resp.status == 200 and resp.headers["Content-Type"] == "application/zip"
                async for chunk in resp.content.iter_chunked(BLOCK):
                    zipped += len(chunk)
                    tail = (tail + chunk)[-256:]
        # Stored, not compressed: the archive is the file plus headers, ending in its directory.
        assert SIZE < zipped < SIZE + 4096 and b"PK\x05\x06" in tail
        growth = rss.peak - rss.base
        assert growth < RSS_GROWTH, f"AiKore grew {growth / 2**20:.0f} MiB (upload took {upload_s:.1f}s)"
