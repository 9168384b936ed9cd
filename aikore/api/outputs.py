"""The outputs gallery: ``/api/instances/{id}/outputs[...]``, what the instance wrote to INSTANCE_OUTPUT_DIR."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web
from PIL import UnidentifiedImageError

from aikore.api.common import json_response, path_id
from aikore.api.events import STREAMS_CLOSING, open_sse, pump, sse
from aikore.errors import AikoreError
from aikore.files import ops
from aikore.files.confine import resolve
from aikore.outputs import gallery, parameters, thumbnails
from aikore.store.workspace import OUTPUT_DIR
from aikore.supervisor import SUPERVISOR

DEFAULT_LIMIT = 200
MAX_LIMIT = 2000


def _folders(request: web.Request) -> tuple[str, Path, Path]:
    """The instance's name, folder and output folder."""
    supervisor = request.app[SUPERVISOR]
    instance = supervisor.instance(path_id(request))
    folder = supervisor.workspace.path(instance.name)
    return instance.name, folder, folder / OUTPUT_DIR


def _item(request: web.Request) -> tuple[str, Path, Path, Path]:
    name, folder, output = _folders(request)
    path = resolve(output, request.query.get("path", ""))
    if not path.is_file() or gallery.kind_of(path) is None:
        raise AikoreError("not_found", "path: no image or video there", 404, field="path")
    return name, folder, output, path


def _int(request: web.Request, name: str, default: int, maximum: int) -> int:
    text = request.query.get(name, "")
    if text == "":
        return default
    if not (text.isascii() and text.isdigit()):
        raise AikoreError("invalid_field", f"{name}: must be a non-negative integer", 400, field=name)
    return min(int(text), maximum)


async def list_outputs(request: web.Request) -> web.Response:
    _, _, output = _folders(request)
    limit, offset = _int(request, "limit", DEFAULT_LIMIT, MAX_LIMIT), _int(request, "offset", 0, 10**9)
    items = gallery.newest_first(await asyncio.to_thread(gallery.scan, output))
    return json_response({"total": len(items), "items": items[offset: offset + limit]})


async def get_file(request: web.Request) -> web.FileResponse:
    _, _, _, path = _item(request)
    disposition = "attachment" if request.query.get("download") == "1" else "inline"
    header = f"{disposition}; filename*=UTF-8''{quote(path.name)}"
    return web.FileResponse(path, headers={"Content-Disposition": header})


async def get_thumbnail(request: web.Request) -> web.FileResponse:
    _, folder, _, path = _item(request)
    if gallery.kind_of(path) != "image":
        raise AikoreError("no_thumbnail", "path: videos have no thumbnail", 404, field="path")
    try:
        thumb = await asyncio.to_thread(thumbnails.thumbnail, folder, path)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        message = f"path: not a readable image ({exc.__class__.__name__})"
        raise AikoreError("bad_image", message, 415, field="path") from None
    return web.FileResponse(thumb, headers={"Cache-Control": "private, max-age=86400"})


async def get_parameters(request: web.Request) -> web.Response:
    _, _, output, path = _item(request)
    if gallery.kind_of(path) != "image":
        return json_response({"path": request.query["path"], "comfyui": None, "a1111": None, "text": {}})
    try:
        found = await asyncio.to_thread(parameters.read, path)
    except (UnidentifiedImageError, OSError, ValueError):
        found = {"comfyui": None, "a1111": None, "text": {}}
    return json_response({"path": path.relative_to(output.resolve()).as_posix(), **found})


async def delete_output(request: web.Request) -> web.Response:
    name, _, output, path = _item(request)
    await asyncio.to_thread(ops.trash, output, path, request.app[SUPERVISOR].workspace.trash_dir, f"{name}-output")
    return web.Response(status=204)


async def stream_outputs(request: web.Request) -> web.StreamResponse:
    _, _, output = _folders(request)
    resp = await open_sse(request)
    source = gallery.changes(output, request.app[STREAMS_CLOSING])
    await pump(request, resp, source, lambda change: sse(change[0], change[1]))
    return resp


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/instances/{id}/outputs", list_outputs)
    r.add_get("/api/instances/{id}/outputs/file", get_file)
    r.add_delete("/api/instances/{id}/outputs/file", delete_output)
    r.add_get("/api/instances/{id}/outputs/thumbnail", get_thumbnail)
    r.add_get("/api/instances/{id}/outputs/parameters", get_parameters)
    r.add_get("/api/instances/{id}/outputs/stream", stream_outputs)


_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
_PATH = {
    "name": "path", "in": "query", "required": True, "schema": {"type": "string"},
    "description": "Relative to INSTANCE_OUTPUT_DIR; `..`, absolute paths, NUL and links out are refused",
}
_ERROR = {"$ref": "#/components/schemas/Error"}


def _err(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


_REFUSED = {
    "400": _err("A bad path (`..`, absolute, NUL) or parameter"),
    "403": _err("The path leads outside the output folder"),
    "404": _err("Unknown instance, or no image or video at that path"),
}
_ITEM = {
    "type": "object",
    "required": ["path", "name", "kind", "size", "mtime"],
    "properties": {
        "path": {"type": "string"}, "name": {"type": "string"}, "kind": {"type": "string", "enum": ["image", "video"]},
        "size": {"type": "integer"}, "mtime": {"type": "number", "description": "Unix time"},
    },
}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "OutputItem": _ITEM,
    "OutputList": {
        "type": "object",
        "required": ["total", "items"],
        "properties": {"total": {"type": "integer"},
                       "items": {"type": "array", "items": {"$ref": "#/components/schemas/OutputItem"}}},
    },
    "OutputParameters": {
        "type": "object",
        "required": ["path", "comfyui", "a1111", "text"],
        "properties": {
            "path": {"type": "string"},
            "comfyui": {"type": ["object", "null"], "description": "`summary` (seed, steps, cfg, sampler, model, "
                        "prompts) and the embedded `prompt` and `workflow` JSON"},
            "a1111": {"type": ["object", "null"], "description": "`prompt`, `negative_prompt`, `settings`"},
            "text": {"type": "object", "additionalProperties": {"type": "string"},
                     "description": "Every text chunk as written"},
        },
    },
}
OPENAPI_PATHS: dict[str, Any] = {
    "/api/instances/{id}/outputs": {
        "parameters": [_ID],
        "get": {
            "summary": "The instance's images and videos, newest first",
            "parameters": [
                {"name": "limit", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 0, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}},
                {"name": "offset", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}},
            ],
            "responses": {
                "200": {"description": "A page of the gallery", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/OutputList"}}}},
                "400": _err("A bad parameter"),
                "404": _err("Unknown instance"),
            },
        },
    },
    "/api/instances/{id}/outputs/file": {
        "parameters": [_ID],
        "get": {
            "summary": "The image or video itself (Range supported); download=1 for an attachment",
            "parameters": [_PATH, {"name": "download", "in": "query", "required": False,
                                   "schema": {"type": "string", "enum": ["0", "1"]}}],
            "responses": {"200": {"description": "The file", "content": {"image/*": {}, "video/*": {}}},
                          "206": {"description": "Part of the file", "content": {"video/*": {}}},
                          "416": {"description": "Range not satisfiable"}, **_REFUSED},
        },
        "delete": {
            "summary": "Move the file to the trash",
            "parameters": [_PATH],
            "responses": {"204": {"description": "Moved to the trash"}, **_REFUSED},
        },
    },
    "/api/instances/{id}/outputs/thumbnail": {
        "parameters": [_ID],
        "get": {
            "summary": "A JPEG thumbnail of an image, made once and cached under the instance folder",
            "parameters": [_PATH],
            "responses": {"200": {"description": "The thumbnail", "content": {"image/jpeg": {}}}, **_REFUSED,
                          "415": _err("Not a readable image")},
        },
    },
    "/api/instances/{id}/outputs/parameters": {
        "parameters": [_ID],
        "get": {
            "summary": "Generation parameters embedded in the image (ComfyUI prompt/workflow, A1111 parameters)",
            "parameters": [_PATH],
            "responses": {"200": {"description": "What the image carries", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/OutputParameters"}}}}, **_REFUSED},
        },
    },
    "/api/instances/{id}/outputs/stream": {
        "parameters": [_ID],
        "get": {
            "summary": "New and removed outputs, live (Server-Sent Events)",
            "description": "`event: added` with an OutputItem for each new or rewritten file, `event: removed` "
            "with `{\"path\"}`; the folder is looked at every few seconds.",
            "responses": {"200": {"description": "An endless event stream", "content": {"text/event-stream": {}}},
                          "404": _err("Unknown instance")},
        },
    },
}
