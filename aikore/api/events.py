"""``GET /api/events``: a live SSE stream of instance state changes for the dashboard.

The stream opens with an ``event: snapshot`` of every instance, then forwards each bus event as
``event: <kind>`` (``instance`` with the instance JSON, ``instance_deleted`` with id and name).
The subscription is taken before the snapshot is read, so no change falls between the two.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

from aiohttp import web

from aikore.api.instances import instance_json
from aikore.api.models import download_json
from aikore.events import EVENTS
from aikore.http import AUTH
from aikore.http.identity import ANONYMOUS, IDENTITY
from aikore.models.events import DownloadChanged, DownloadRemoved, ModelsChanged
from aikore.supervisor import SUPERVISOR
from aikore.supervisor.copies import CopyChanged
from aikore.supervisor.events import InstanceChanged, InstanceDeleted, InstanceRenamed

T = TypeVar("T")

# Set when AiKore shuts down: live SSE streams (events, logs) end instead of holding shutdown up.
STREAMS_CLOSING = web.AppKey("streams_closing", asyncio.Event)

# Proxies and browsers drop idle connections; a comment line every so often keeps them open.
KEEPALIVE = 15.0
SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    # nginx in front of AiKore must not buffer the stream.
    "X-Accel-Buffering": "no",
}


def sse(kind: str, data: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def open_sse(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers=SSE_HEADERS)
    await resp.prepare(request)
    return resp


async def pump(
    request: web.Request, resp: web.StreamResponse, source: AsyncIterator[T], render: Callable[[T], bytes | None]
) -> None:
    """Write ``source`` items to an open SSE response until it ends, the client goes, AiKore stops or
    the browser session that opened it logs out (told as ``event: session_ended``; its reconnect is
    then answered 401)."""
    with _logout_of(request) as logged_out:
        signals = [request.app[STREAMS_CLOSING], *([logged_out] if logged_out else [])]
        closed = asyncio.ensure_future(_any_set(signals))
        pending: asyncio.Future[T] = asyncio.ensure_future(anext(source))
        try:
            while True:
                done, _ = await asyncio.wait({pending, closed}, timeout=KEEPALIVE, return_when=asyncio.FIRST_COMPLETED)
                if closed in done:
                    if logged_out and logged_out.is_set():
                        await resp.write(sse("session_ended", {"reason": "logged-out"}))
                    return
                if pending not in done:
                    await resp.write(b": keepalive\n\n")
                    continue
                try:
                    item = pending.result()
                except StopAsyncIteration:
                    return
                chunk = render(item)
                if chunk:
                    await resp.write(chunk)
                pending = asyncio.ensure_future(anext(source))
        except (ConnectionResetError, ConnectionError):
            return  # the client went away
        finally:
            closed.cancel()
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()


@contextlib.contextmanager
def _logout_of(request: web.Request) -> Iterator[asyncio.Event | None]:
    """Set when the browser session that made ``request`` logs out (None: not made by a session)."""
    session = request.get(IDENTITY, ANONYMOUS).session
    if session is None:
        yield None
        return
    with request.app[AUTH].sessions.watch(session) as logged_out:
        yield logged_out


async def _any_set(events: list[asyncio.Event]) -> None:
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


def render_event(app: web.Application, event: object) -> bytes | None:
    """A domain event as the SSE event the dashboard knows; None for events it does not show."""
    if isinstance(event, InstanceChanged | InstanceRenamed):
        # A rename keeps the id, so the dashboard's row for it simply takes the new name.
        return sse("instance", instance_json(app, event.instance, event.runtime))
    if isinstance(event, InstanceDeleted):
        return sse("instance_deleted", {"id": event.instance.id, "name": event.instance.name})
    if isinstance(event, DownloadChanged):
        return sse("download", download_json(event.download))
    if isinstance(event, DownloadRemoved):
        return sse("download_removed", {"id": event.download_id})
    if isinstance(event, CopyChanged):
        return sse("copy", event.job.to_json())
    if isinstance(event, ModelsChanged):
        return sse("models_changed", {"kind": event.kind})
    return None


async def stream_events(request: web.Request) -> web.StreamResponse:
    app = request.app
    supervisor = app[SUPERVISOR]
    # Subscribed before the snapshot is taken, so no change falls between the two.
    events = app[EVENTS].subscribe()
    snapshot = [instance_json(app, i, supervisor.runtime(i), request) for i in supervisor.instances()]
    resp = await open_sse(request)
    await resp.write(sse("snapshot", {"instances": snapshot}))
    await pump(request, resp, events, lambda event: render_event(app, event))
    return resp


async def _close_streams(app: web.Application) -> None:
    app[STREAMS_CLOSING].set()


def setup(app: web.Application) -> None:
    app[STREAMS_CLOSING] = asyncio.Event()
    # Shutdown runs before aiohttp waits for open requests: live streams end here, not at its timeout.
    app.on_shutdown.append(_close_streams)
    app.router.add_get("/api/events", stream_events)


OPENAPI_SCHEMAS: dict[str, Any] = {}
OPENAPI_PATHS: dict[str, Any] = {
    "/api/events": {
        "get": {
            "summary": "Live instance state changes (Server-Sent Events)",
            "description": (
                "First `event: snapshot` with `{\"instances\": [Instance...]}`, then one event per change: "
                "`event: instance` (data: the Instance) or `event: instance_deleted` (data: `{id, name}`); "
                "model downloads: `event: download` (data: the ModelDownload, at most 4 a second each), "
                "`event: download_removed` (`{id}`), `event: models_changed` (`{kind}`: re-read /api/models); "
                "copies of instances: `event: copy` (data: the CopyJob, at most 4 a second each). "
                "Comment lines keep the connection alive. When the browser session that opened the stream "
                "logs out (in any tab), `event: session_ended` (`{reason: \"logged-out\"}`) and the stream ends; "
                "every live stream of that session (logs, outputs) ends then too."
            ),
            "responses": {"200": {"description": "An endless event stream", "content": {"text/event-stream": {}}}},
        }
    }
}
