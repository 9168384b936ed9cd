"""In-process event bus: domain events fan out to listeners (route tables) and live streams.

The bus carries typed domain objects (``aikore.supervisor.events``), never API JSON: listeners
read the objects they know, and JSON is made only at the API edge (the ``/api/events`` stream).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

log = logging.getLogger(__name__)

# A slow browser must not make AiKore hoard events: its stream is dropped and it reconnects.
_QUEUE_LIMIT = 1000

Listener = Callable[[object], None]


class EventBus:
    """Synchronous listeners run inside ``publish``; stream subscribers get their own queue."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._queues: set[asyncio.Queue[object | None]] = set()

    def listen(self, callback: Listener) -> None:
        self._listeners.append(callback)

    def publish(self, event: object) -> None:
        for callback in self._listeners:
            try:
                callback(event)
            except Exception:
                log.exception("event listener %r failed on %r", callback, type(event).__name__)
        for queue in list(self._queues):
            if queue.qsize() >= _QUEUE_LIMIT:
                self._queues.discard(queue)
                queue.put_nowait(None)
            else:
                queue.put_nowait(event)

    def subscribe(self) -> AsyncIterator[object]:
        """Events from now on, until the consumer stops iterating or falls too far behind.

        The queue is registered at once (not at the first ``anext``), so a snapshot read right
        after subscribing misses nothing.
        """
        queue: asyncio.Queue[object | None] = asyncio.Queue()
        self._queues.add(queue)
        return self._drain(queue)

    async def _drain(self, queue: asyncio.Queue[object | None]) -> AsyncIterator[object]:
        try:
            while (event := await queue.get()) is not None:
                yield event
        finally:
            self._queues.discard(queue)

    def close(self) -> None:
        """End every open stream (used on shutdown so SSE handlers return)."""
        for queue in list(self._queues):
            queue.put_nowait(None)
        self._queues.clear()


EVENTS = web.AppKey("events", EventBus)
