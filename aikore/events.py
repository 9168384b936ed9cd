"""In-process event bus: state changes fan out to listeners (route table) and live streams."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

# A slow browser must not make AiKore hoard events: its stream is dropped and it reconnects.
_QUEUE_LIMIT = 1000


@dataclass(frozen=True)
class Event:
    kind: str
    data: dict[str, Any]
    time: float = field(default_factory=time.time)


Listener = Callable[[Event], None]


class EventBus:
    """Synchronous listeners run inside ``publish``; stream subscribers get their own queue."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._queues: set[asyncio.Queue[Event | None]] = set()

    def listen(self, callback: Listener) -> None:
        self._listeners.append(callback)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        event = Event(kind, data)
        for callback in self._listeners:
            try:
                callback(event)
            except Exception:
                log.exception("event listener %r failed on %s", callback, kind)
        for queue in list(self._queues):
            if queue.qsize() >= _QUEUE_LIMIT:
                self._queues.discard(queue)
                queue.put_nowait(None)
            else:
                queue.put_nowait(event)

    async def subscribe(self) -> AsyncIterator[Event]:
        """Yield events until the consumer stops iterating or falls too far behind."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._queues.add(queue)
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
