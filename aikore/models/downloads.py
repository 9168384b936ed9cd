"""Downloads into the model tree: queued, a few at once, resumable, verified, cancellable.

A download streams to ``<target>.part`` beside its target and is renamed into place only once it
is complete and its sha256 matches (the source's or the user's), so an app never sees half a
model. A dropped connection resumes with ``Range`` from the part's size; the queue is kept in
``<data>/downloads.json``, so after a restart unfinished downloads pick up where their part ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import BinaryIO

import aiohttp

from aikore.errors import AikoreError
from aikore.events import EventBus
from aikore.models.download import ACTIVE_STATES, CANCELLED, DONE, DOWNLOADING, FAILED, QUEUED, VERIFYING, Download
from aikore.models.events import DownloadChanged, DownloadRemoved, ModelsChanged
from aikore.models.library import PART_SUFFIX, ModelLibrary, check_relpath
from aikore.models.sources import Resolved, Secrets, filename_from_disposition

log = logging.getLogger(__name__)

_CHUNK = 1024 * 1024
_PROGRESS_EVERY = 0.25  # seconds between progress events of one download
_SAVE_EVERY = 2.0
_SPEED_WINDOW = 0.5
_RETRIES = 5
# Kept free beyond the file itself, so a download never fills the disk to the last byte.
_DISK_MARGIN = 64 * 1024 * 1024


class _Failed(Exception):
    """A download cannot go on; the message is what the user reads."""


class _Dropped(Exception):
    """The connection went before the file was complete: resume from the part's end."""


class Downloads:
    """The queue: ``add`` resolves and queues, workers fetch; every change is published."""

    def __init__(
        self,
        library: ModelLibrary,
        secrets: Secrets,
        state_path: Path,
        bus: EventBus,
        concurrency: int = 2,
        retry_pause: float = 1.0,
    ) -> None:
        self.library = library
        self.secrets = secrets
        self.state_path = state_path
        self.bus = bus
        self.concurrency = concurrency
        self.retry_pause = retry_pause
        self._items: dict[str, Download] = {}
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._last_event: dict[str, float] = {}
        self._last_save = 0.0

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "Downloads.start() was not called"
        return self._session

    async def start(self) -> None:
        """Open the HTTP session, reload the queue and resume what a restart interrupted."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=60))
        for download in self._load():
            if download.state in ACTIVE_STATES:
                download.state = QUEUED
                download.speed = 0.0
                self._queue.put_nowait(download.id)
            self._items[download.id] = download
        self._workers = [asyncio.create_task(self._worker()) for _ in range(self.concurrency)]

    async def stop(self) -> None:
        """Stop the workers; unfinished downloads stay queued for the next start."""
        tasks = [*self._workers, *self._running.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        self._save()
        if self._session is not None:
            await self._session.close()

    def list(self) -> list[Download]:
        return sorted(self._items.values(), key=lambda d: d.created)

    def get(self, download_id: str) -> Download:
        try:
            return self._items[download_id]
        except KeyError:
            raise AikoreError("not_found", f"download {download_id[:40]} does not exist", 404) from None

    def add(self, resolved: Resolved, kind: str, filename: str | None, sha256: str | None) -> Download:
        """Queue a resolved file for ``kind``; refused at once when its name, place or size cannot work."""
        name = check_relpath(filename, "filename") if filename else None
        if name is None and resolved.filename:
            name = check_relpath(resolved.filename, "filename")
        download = Download(
            id=uuid.uuid4().hex[:12],
            url=resolved.url,
            kind=kind,
            filename=name,
            source=resolved.source,
            secret=resolved.secret,
            sha256=sha256 or resolved.sha256,
            name_given=filename is not None,
            total=resolved.size,
            created=time.time(),
        )
        if name is not None:
            self._check_target(download, name)
        if resolved.size is not None:
            self._check_space(resolved.size)
        self._items[download.id] = download
        self._changed(download, save=True)
        self._queue.put_nowait(download.id)
        return download

    def cancel(self, download_id: str) -> Download:
        download = self.get(download_id)
        if download.state in ACTIVE_STATES:
            download.state = CANCELLED
            download.finished = time.time()
            if task := self._running.get(download_id):
                task.cancel()
            else:
                self._remove_part(download)
            self._changed(download, save=True)
        return download

    def retry(self, download_id: str) -> Download:
        """Queue a failed or cancelled download again, from its first byte."""
        download = self.get(download_id)
        if download.state not in (FAILED, CANCELLED) or download_id in self._running:
            raise AikoreError(
                "conflict", f"download {download_id} is {download.state}: only a failed or cancelled one retries", 409
            )
        if download.filename is not None:
            self._check_target(download, download.filename)
        download.state, download.error, download.finished = QUEUED, None, None
        download.received, download.speed = 0, 0.0
        self._changed(download, save=True)
        self._queue.put_nowait(download.id)
        return download

    def remove(self, download_id: str) -> None:
        """Forget a download (cancelling it first if it is still going)."""
        self.cancel(download_id)
        self._items.pop(download_id, None)
        self._save()
        self.bus.publish(DownloadRemoved(download_id))

    def _check_target(self, download: Download, name: str) -> Path:
        target = self.library.resolve(download.kind, name, "filename")
        if target.exists():
            raise AikoreError("conflict", f"filename: {download.kind}/{name} already exists", 409, field="filename")
        for other in self._items.values():
            if (
                other is not download
                and other.state in ACTIVE_STATES
                and (other.kind, other.filename) == (download.kind, name)
            ):
                raise AikoreError(
                    "conflict", f"filename: {download.kind}/{name} is already being downloaded", 409, field="filename"
                )
        return target

    def _check_space(self, needed: int) -> None:
        free = self.library.free_bytes()
        if needed + _DISK_MARGIN > free:
            raise AikoreError(
                "insufficient_storage",
                f"not enough disk space: the file needs {needed} bytes, {free} are free in the models folder",
                507,
            )

    async def _worker(self) -> None:
        while True:
            download_id = await self._queue.get()
            download = self._items.get(download_id)
            if download is None or download.state != QUEUED:
                continue
            task = asyncio.create_task(self._run(download))
            self._running[download_id] = task
            try:
                # wait() does not raise when the user cancels the task; stop() cancels both.
                await asyncio.wait({task})
            finally:
                self._running.pop(download_id, None)

    async def _run(self, download: Download) -> None:
        try:
            await self._fetch_with_retries(download)
            await self._finish(download)
        except _Failed as exc:
            self._fail(download, str(exc))
        except asyncio.CancelledError:
            if download.state == CANCELLED:
                self._remove_part(download)
            raise
        except Exception as exc:
            log.exception("download %s failed", download.id)
            self._fail(download, f"unexpected error: {exc}")

    async def _fetch_with_retries(self, download: Download) -> None:
        download.state = DOWNLOADING
        self._changed(download, save=True)
        for attempt in range(_RETRIES + 1):
            try:
                await self._fetch(download)
                return
            except _Dropped as exc:
                if attempt == _RETRIES:
                    raise _Failed(
                        f"the connection kept dropping ({exc}) after {download.received} bytes; nothing was kept"
                    ) from None
                log.info("download %s dropped (%s); resuming from byte %d", download.id, exc, download.received)
                await asyncio.sleep(self.retry_pause * (attempt + 1))

    async def _fetch(self, download: Download) -> None:
        offset = self._part_size(download)
        headers = self.secrets.headers(download.secret)
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            async with self.session.get(download.url, headers=headers) as resp:
                offset = self._accept(download, resp, offset)
                if resp.status == 416:
                    download.received = offset  # the part already holds the whole file
                    return
                await self._stream(download, resp, offset)
        except (
            aiohttp.ClientPayloadError,
            aiohttp.ServerDisconnectedError,
            aiohttp.ClientOSError,
            TimeoutError,
        ) as exc:
            raise _Dropped(type(exc).__name__) from None
        except aiohttp.ClientConnectionError as exc:
            raise _Dropped(str(exc) or type(exc).__name__) from None
        if download.total is not None and download.received < download.total:
            raise _Dropped(f"the server ended the file at {download.received} of {download.total} bytes")

    def _accept(self, download: Download, resp: aiohttp.ClientResponse, offset: int) -> int:
        """Check the answer before a byte is written; the offset writing continues from."""
        if resp.status == 416 and offset and download.total == offset:
            return offset
        if resp.status not in (200, 206):
            reason = {
                401: "access refused: a token or API key is needed",
                403: "access forbidden",
                404: "not found",
            }.get(resp.status, resp.reason or "error")
            raise _Failed(f"the server answered HTTP {resp.status} ({reason}) for {download.url}")
        if resp.status == 200:
            offset = 0  # no Range support, or a fresh start: the whole file comes again
        if download.filename is None or (not download.name_given and offset == 0):
            named = filename_from_disposition(resp.headers.get("Content-Disposition"))
            if named or download.filename is None:
                name = named or "download.bin"
                try:
                    self._check_target(download, check_relpath(name, "filename"))
                except AikoreError as exc:
                    raise _Failed(exc.message) from None
                download.filename = check_relpath(name, "filename")
        length = resp.content_length
        if length is not None:
            download.total = offset + length
            try:
                self._check_space(length)
            except AikoreError as exc:
                raise _Failed(exc.message) from None
        if self.library.resolve(download.kind, download.filename or "", "filename").exists():
            raise _Failed(f"{download.kind}/{download.filename} already exists")
        return offset

    async def _stream(self, download: Download, resp: aiohttp.ClientResponse, offset: int) -> None:
        part = self._part_path(download)
        part.parent.mkdir(parents=True, exist_ok=True)
        download.received = offset
        mark_time, mark_bytes = time.monotonic(), offset
        f = await asyncio.to_thread(_open_part, part, offset)
        buffer = bytearray()
        try:
            async for chunk in resp.content.iter_chunked(_CHUNK):
                buffer += chunk
                if len(buffer) >= _CHUNK:
                    await asyncio.to_thread(f.write, bytes(buffer))
                    buffer.clear()
                download.received += len(chunk)
                now = time.monotonic()
                if now - mark_time >= _SPEED_WINDOW:
                    # A smoothed rate over half-second windows: steady figures, yet quick to follow a change.
                    rate = (download.received - mark_bytes) / (now - mark_time)
                    download.speed = rate if download.speed == 0 else 0.7 * download.speed + 0.3 * rate
                    mark_time, mark_bytes = now, download.received
                self._progress(download)
        finally:
            # What arrived before a drop is a valid prefix: kept, so the resume starts after it.
            f.write(buffer)
            f.close()

    async def _finish(self, download: Download) -> None:
        download.state, download.speed = VERIFYING, 0.0
        self._changed(download, save=True)
        part = self._part_path(download)
        digest = await asyncio.to_thread(_sha256_of, part)
        if download.sha256 and digest != download.sha256:
            part.unlink(missing_ok=True)
            raise _Failed(f"checksum mismatch: expected sha256 {download.sha256}, got {digest}; the file was not kept")
        target = self.library.resolve(download.kind, download.filename or "", "filename")
        if target.exists():
            raise _Failed(f"{download.kind}/{download.filename} appeared while downloading; the download was not kept")
        os.rename(part, target)
        self.library.record(download.kind, download.filename or "", download.url, digest)
        download.sha256, download.state, download.finished = digest, DONE, time.time()
        download.received = download.total = target.stat().st_size
        self._changed(download, save=True)
        self.bus.publish(ModelsChanged(download.kind))

    def _fail(self, download: Download, message: str) -> None:
        log.warning("download %s into %s failed: %s", download.id, download.kind, message)
        self._remove_part(download)
        download.state, download.error, download.finished, download.speed = FAILED, message, time.time(), 0.0
        self._changed(download, save=True)

    def _part_path(self, download: Download) -> Path:
        target = self.library.resolve(download.kind, download.filename or "", "filename")
        return target.with_name(target.name + PART_SUFFIX)

    def _part_size(self, download: Download) -> int:
        if download.filename is None:
            return 0
        try:
            return self._part_path(download).stat().st_size
        except (FileNotFoundError, AikoreError):
            return 0

    def _remove_part(self, download: Download) -> None:
        if download.filename is not None:
            with contextlib.suppress(AikoreError, OSError):
                self._part_path(download).unlink(missing_ok=True)

    def _progress(self, download: Download) -> None:
        now = time.monotonic()
        if now - self._last_event.get(download.id, 0.0) >= _PROGRESS_EVERY:
            self._last_event[download.id] = now
            self._changed(download, save=now - self._last_save >= _SAVE_EVERY)

    def _changed(self, download: Download, save: bool = False) -> None:
        if save:
            self._save()
        self.bus.publish(DownloadChanged(dataclasses.replace(download)))

    def _save(self) -> None:
        self._last_save = time.monotonic()
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        tmp.write_text(json.dumps([d.persisted() for d in self.list()], indent=1), encoding="utf-8")
        os.replace(tmp, self.state_path)

    def _load(self) -> list[Download]:
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except ValueError:
            log.warning("%s is not valid JSON; starting with an empty download list", self.state_path)
            return []
        fields = {f.name for f in dataclasses.fields(Download)}
        found = []
        for item in data if isinstance(data, list) else []:
            try:
                found.append(Download(**{k: v for k, v in item.items() if k in fields}))
            except (TypeError, AttributeError):
                log.warning("skipping an unreadable download entry in %s", self.state_path)
        return found


def _open_part(part: Path, offset: int) -> BinaryIO:
    """The part file positioned at ``offset`` (anything after it is cut), or a new one at 0."""
    f = open(part, "r+b" if offset and part.exists() else "wb")
    f.seek(offset)
    f.truncate()
    return f


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
