"""Web terminals: ``/api/instances/{id}/terminal`` and ``/api/terminal`` (websockets), ``/api/terminals``.

The websocket carries the PTY: binary frames both ways are the terminal's bytes; text frames are
JSON control messages (client: ``resize``, ``keep``, ``input``; server: ``session``, ``exit``).
Closing the socket ends the shell unless the session is kept; a kept one is reattached with
``?session=<id>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from aikore.api.common import json_response, path_id
from aikore.config import SETTINGS
from aikore.errors import AikoreError
from aikore.supervisor import SUPERVISOR
from aikore.terminal import TERMINALS, TerminalSession, aikore_env, session_json, shell_env

_MAX_SIZE = 1000
# A paste of a few MiB is a real use; control messages are tiny.
_MAX_MESSAGE = 8 * 1024 * 1024


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "") in ("1", "true", "yes")


def _size(request: web.Request, name: str, default: int) -> int:
    text = request.query.get(name, "")
    if text == "":
        return default
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= _MAX_SIZE:
        raise AikoreError("invalid_field", f"{name}: must be an integer from 1 to {_MAX_SIZE}", 400, field=name)
    return int(text)


async def instance_terminal(request: web.Request) -> web.StreamResponse:
    supervisor = request.app[SUPERVISOR]
    instance = supervisor.instance(path_id(request))
    folder = supervisor.workspace.path(instance.name)
    if not folder.is_dir():
        raise AikoreError("not_found", f"instance {instance.name!r} has no folder", 404)
    parent = supervisor.parent_of(instance)
    env = shell_env(request.app[SETTINGS], instance, folder,
                    satellite_of=(parent.name, supervisor.workspace.path(parent.name)) if parent else None)
    return await _serve(request, instance.name, folder, env, instance.id)


async def aikore_terminal(request: web.Request) -> web.StreamResponse:
    data_dir = request.app[SETTINGS].data_dir
    return await _serve(request, "aikore", data_dir, aikore_env(), None)


async def _session(request: web.Request, title: str, cwd: Path, env: dict[str, str],
                   owner: int | None) -> TerminalSession:
    terminals = request.app[TERMINALS]
    session_id = request.query.get("session")
    if session_id is None:
        cols, rows = _size(request, "cols", 80), _size(request, "rows", 24)
        return await terminals.open(title, cwd, env, _flag(request, "keep"), cols, rows, owner=owner)
    session = terminals.get(session_id)
    if session.owner != owner:
        raise AikoreError("not_found", f"no terminal session {session_id[:40]!r} here", 404)
    if session.attached:
        raise AikoreError("terminal_attached", "the session is open in another window", 409)
    return session


async def _serve(request: web.Request, title: str, cwd: Path, env: dict[str, str],
                 owner: int | None) -> web.StreamResponse:
    # Refusals happen before the upgrade, so they are plain JSON errors.
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise AikoreError("websocket_required", "this endpoint is a websocket", 400)
    session = await _session(request, title, cwd, env, owner)
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=_MAX_MESSAGE)
    try:
        await ws.prepare(request)
    except BaseException:
        if not session.keep:
            await request.app[TERMINALS].end(session.id)
        raise
    output: asyncio.Queue[bytes | None] = asyncio.Queue()
    backlog = session.attach(output.put_nowait)
    sender = asyncio.create_task(_send(ws, session, output))
    try:
        await ws.send_str(json.dumps({"type": "session", **session_json(session)}))
        if backlog:
            await ws.send_bytes(backlog)
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                session.write(msg.data)
            elif msg.type == WSMsgType.TEXT:
                _control(session, msg.data)
    finally:
        session.detach()
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        if not session.keep and session.alive:
            await request.app[TERMINALS].end(session.id)
    return ws


async def _send(ws: web.WebSocketResponse, session: TerminalSession, output: asyncio.Queue[bytes | None]) -> None:
    while (data := await output.get()) is not None:
        # What piled up while the last frame was sent goes out as one frame.
        parts = [data]
        while not output.empty() and (more := output.get_nowait()) is not None:
            parts.append(more)
        await ws.send_bytes(b"".join(parts))
        if not session.alive and output.empty():
            break
    await ws.send_str(json.dumps({"type": "exit", "code": session.exit_code}))
    await ws.close()


def _control(session: TerminalSession, text: str) -> None:
    try:
        message = json.loads(text)
    except ValueError:
        return
    if not isinstance(message, dict):
        return
    kind = message.get("type")
    if kind == "input" and isinstance(message.get("data"), str):
        session.write(message["data"].encode("utf-8", "surrogateescape"))
    elif kind == "resize":
        cols, rows = message.get("cols"), message.get("rows")
        if isinstance(cols, int) and isinstance(rows, int) and 1 <= cols <= _MAX_SIZE and 1 <= rows <= _MAX_SIZE:
            session.resize(cols, rows)
    elif kind == "keep" and isinstance(message.get("keep"), bool):
        session.keep = message["keep"]


async def list_terminals(request: web.Request) -> web.Response:
    return json_response([session_json(s) for s in request.app[TERMINALS].list()])


async def end_terminal(request: web.Request) -> web.Response:
    await request.app[TERMINALS].end(request.match_info["session"])
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/instances/{id}/terminal", instance_terminal)
    app.router.add_get("/api/terminal", aikore_terminal)
    app.router.add_get("/api/terminals", list_terminals)
    app.router.add_delete("/api/terminals/{session}", end_terminal)


_ERROR = {"$ref": "#/components/schemas/Error"}


def _err(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


_WS_PARAMS = [
    {"name": "session", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "Reattach this kept session instead of starting a shell"},
    {"name": "keep", "in": "query", "required": False, "schema": {"type": "string", "enum": ["0", "1"]},
     "description": "1: the shell survives the socket's close and can be reattached"},
    *({"name": n, "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": _MAX_SIZE}}
      for n in ("cols", "rows")),
]
_WS_DESCRIPTION = (
    "A websocket. Binary frames are the terminal's bytes both ways. Text frames are JSON: the client "
    "sends `{\"type\":\"resize\",\"cols\":N,\"rows\":N}`, `{\"type\":\"keep\",\"keep\":true}` or "
    "`{\"type\":\"input\",\"data\":\"...\"}`; the server sends `{\"type\":\"session\",...}` first and "
    "`{\"type\":\"exit\",\"code\":N}` when the shell ends. Closing the socket ends the shell (its whole "
    "session) unless it is kept."
)
_WS_RESPONSES = {
    "101": {"description": "Switching to the websocket"},
    "400": _err("Not a websocket request, or a bad size"),
    "404": _err("Unknown instance or session"),
    "409": _err("Too many terminals, or the session is attached elsewhere"),
}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "TerminalSession": {
        "type": "object",
        "required": ["id", "title", "instance_id", "keep", "attached", "pid", "created"],
        "properties": {
            "id": {"type": "string"},
            "title": {"type": "string"},
            "instance_id": {"type": ["integer", "null"], "description": "null: AiKore's own shell"},
            "keep": {"type": "boolean"},
            "attached": {"type": "boolean"},
            "pid": {"type": ["integer", "null"]},
            "created": {"type": "number", "description": "Unix time"},
        },
    }
}
OPENAPI_PATHS: dict[str, Any] = {
    "/api/instances/{id}/terminal": {
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}],
        "get": {
            "summary": "A shell in the instance's folder with its environment (websocket)",
            "description": _WS_DESCRIPTION + " The shell has the instance's launch environment "
            "(WEBUI_*, INSTANCE_*, CUDA_VISIBLE_DEVICES, AIKORE_*) and its Python environment "
            "(INSTANCE_CONF_DIR/env) activated when there is one.",
            "parameters": _WS_PARAMS,
            "responses": _WS_RESPONSES,
        },
    },
    "/api/terminal": {
        "get": {
            "summary": "A shell in AiKore's data folder with AiKore's environment (websocket)",
            "description": _WS_DESCRIPTION,
            "parameters": _WS_PARAMS,
            "responses": _WS_RESPONSES,
        }
    },
    "/api/terminals": {
        "get": {
            "summary": "The open terminal sessions",
            "responses": {
                "200": {
                    "description": "Sessions, oldest first",
                    "content": {"application/json": {"schema": {
                        "type": "array", "items": {"$ref": "#/components/schemas/TerminalSession"}}}},
                }
            },
        }
    },
    "/api/terminals/{session}": {
        "parameters": [{"name": "session", "in": "path", "required": True, "schema": {"type": "string"}}],
        "delete": {
            "summary": "End a session: its shell and everything it started",
            "responses": {"204": {"description": "Ended"}, "404": _err("No such session")},
        },
    },
}
