"""Instance logs: ``/api/instances/{id}/logs`` (last lines), ``/logs/stream`` (live), ``/logs/download``."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import web

from aikore.api.common import json_response, path_id
from aikore.api.events import STREAMS_CLOSING, open_sse, pump, sse
from aikore.errors import AikoreError
from aikore.store.instance import Instance
from aikore.supervisor import SUPERVISOR
from aikore.supervisor.logs import MAIN_LOG, InstanceLog

DEFAULT_TAIL = 200
MAX_TAIL = 10_000
# Which log of the instance: "instance" (its launch.sh) or a companion's role (e.g. "desktop").
_SOURCE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def _int_param(request: web.Request, name: str, default: int, maximum: int) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    # isascii(): str.isdigit() is also true for "²", which int() then refuses (a 500).
    if not (text.isascii() and text.isdigit()):
        raise AikoreError("invalid_field", f"{name}: must be a non-negative integer, got {text[:20]!r}", 400)
    return min(int(text), maximum)


def _instance_log(request: web.Request, instance: Instance) -> InstanceLog:
    source = request.query.get("source", MAIN_LOG)
    if not _SOURCE.fullmatch(source):  # fullmatch: "$" would let "instance\n" through
        raise AikoreError("invalid_field", f"source: {source[:40]!r} is not a log name", 400, field="source")
    supervisor = request.app[SUPERVISOR]
    return InstanceLog(supervisor.workspace.path(instance.name), supervisor.settings.log_backups, source)


async def get_logs(request: web.Request) -> web.Response:
    instance = request.app[SUPERVISOR].instance(path_id(request))
    tail = _int_param(request, "tail", DEFAULT_TAIL, MAX_TAIL)
    # Off the loop: a tail of long lines may read megabytes.
    lines = await asyncio.to_thread(_instance_log(request, instance).tail, tail)
    return json_response({"id": instance.id, "name": instance.name, "lines": lines})


async def stream_logs(request: web.Request) -> web.StreamResponse:
    instance = request.app[SUPERVISOR].instance(path_id(request))
    tail = _int_param(request, "tail", DEFAULT_TAIL, MAX_TAIL)
    log = _instance_log(request, instance)
    resp = await open_sse(request)
    await pump(
        request, resp, log.follow(tail, request.app[STREAMS_CLOSING]), lambda text: sse("log", {"text": text})
    )
    return resp


async def download_logs(request: web.Request) -> web.StreamResponse:
    instance = request.app[SUPERVISOR].instance(path_id(request))
    log = _instance_log(request, instance)
    name = log.path.stem if log.path.stem != MAIN_LOG else instance.name
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/plain; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}.log"',
        }
    )
    await resp.prepare(request)
    async for chunk in log.chunks():
        await resp.write(chunk)
    await resp.write_eof()
    return resp


def setup(app: web.Application) -> None:
    app.router.add_get("/api/instances/{id}/logs", get_logs)
    app.router.add_get("/api/instances/{id}/logs/stream", stream_logs)
    app.router.add_get("/api/instances/{id}/logs/download", download_logs)


_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
_SOURCE_PARAM = {
    "name": "source", "in": "query", "required": False,
    "schema": {"type": "string", "pattern": _SOURCE.pattern, "default": MAIN_LOG},
    "description": "Which log: the instance's own, or a companion's (e.g. desktop)",
}
_TAIL = {
    "name": "tail", "in": "query", "required": False,
    "schema": {"type": "integer", "minimum": 0, "maximum": MAX_TAIL, "default": DEFAULT_TAIL},
}
_ERROR = {"$ref": "#/components/schemas/Error"}
_ERRORS = {
    "400": {"description": "Bad parameter", "content": {"application/json": {"schema": _ERROR}}},
    "404": {"description": "Unknown instance", "content": {"application/json": {"schema": _ERROR}}},
}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "LogLines": {
        "type": "object",
        "required": ["id", "name", "lines"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "lines": {"type": "array", "items": {"type": "string"}},
        },
    }
}
OPENAPI_PATHS: dict[str, Any] = {
    "/api/instances/{id}/logs": {
        "parameters": [_ID],
        "get": {
            "summary": "The last lines of the instance's log (across rotated files)",
            "parameters": [_TAIL, _SOURCE_PARAM],
            "responses": {
                "200": {
                    "description": "Lines, oldest first",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LogLines"}}},
                },
                **_ERRORS,
            },
        },
    },
    "/api/instances/{id}/logs/stream": {
        "parameters": [_ID],
        "get": {
            "summary": "Follow the log live (Server-Sent Events)",
            "description": (
                "`event: log` messages with data `{\"text\": \"...\"}`: first the last `tail` lines, then new "
                "output as it is written, across rotations. Comment lines keep the connection alive."
            ),
            "parameters": [_TAIL, _SOURCE_PARAM],
            "responses": {
                "200": {"description": "An endless event stream", "content": {"text/event-stream": {}}},
                **_ERRORS,
            },
        },
    },
    "/api/instances/{id}/logs/download": {
        "parameters": [_ID],
        "get": {
            "summary": "The whole kept log (rotated files oldest first, then the current one)",
            "parameters": [_SOURCE_PARAM],
            "responses": {"200": {"description": "Log text", "content": {"text/plain": {}}}, **_ERRORS},
        },
    },
}
