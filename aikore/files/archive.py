"""A folder as a zip written on the fly: nothing is staged, memory stays at a few chunks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

from aikore.files.confine import inside

CHUNK = 1024 * 1024
_QUEUED = 8


class _Pipe:
    """The file object zipfile writes to, from a thread, handing full chunks to the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes | None],
                 stop: threading.Event) -> None:
        self._loop, self._queue, self._stop = loop, queue, stop
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        self._buffer += data
        if len(self._buffer) >= CHUNK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._buffer:
            self._put(bytes(self._buffer))
            self._buffer.clear()

    def _put(self, item: bytes | None) -> None:
        if self._stop.is_set():
            raise BrokenPipeError("the download was abandoned")
        # Blocks this thread while the queue is full: the reader's pace is the writer's.
        asyncio.run_coroutine_threadsafe(self._queue.put(item), self._loop).result()

    def close_stream(self) -> None:
        self.flush()
        self._put(None)


def _files(folder: Path) -> list[tuple[Path, str]]:
    """Regular files and folders under ``folder``; links are not followed (nothing outside leaks)."""
    top = folder.resolve()
    found: list[tuple[Path, str]] = []
    for current, dirs, files in os.walk(top, followlinks=False):
        here = Path(current)
        dirs[:] = [d for d in dirs if not (here / d).is_symlink()]
        for name in files:
            path = here / name
            if not path.is_symlink() and path.is_file() and inside(top, path):
                found.append((path, path.relative_to(top).as_posix()))
        if not files and not dirs and here != top:
            found.append((here, here.relative_to(top).as_posix() + "/"))
    return found


def _write_zip(folder: Path, pipe: _Pipe) -> None:
    try:
        with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:  # type: ignore[arg-type]
            for path, name in _files(folder):
                with contextlib.suppress(FileNotFoundError, PermissionError):
                    if name.endswith("/"):
                        zf.mkdir(name)
                    else:
                        zf.write(path, name)
    finally:
        # Also after a failure: the reader gets the end of the stream instead of waiting forever.
        with contextlib.suppress(BrokenPipeError):
            pipe.close_stream()


async def zip_stream(folder: Path) -> AsyncIterator[bytes]:
    """The zip of ``folder``, chunk by chunk, made by a thread as fast as the reader takes it."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(_QUEUED)
    stop = threading.Event()
    worker = loop.run_in_executor(None, _write_zip, folder, _Pipe(loop, queue, stop))
    try:
        while (chunk := await queue.get()) is not None:
            yield chunk
    finally:
        stop.set()
        # Unblocks a writer waiting on a full queue, so the thread ends.
        while not queue.empty():
            queue.get_nowait()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(worker), 5)
