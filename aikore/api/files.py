"""The file browser: ``/api/files/{root}/...`` where root is ``models`` or an instance id.

Every ``path`` parameter goes through ``aikore.files.confine.resolve``: ``..``, absolute paths,
NUL bytes and links leading out of the root are refused with a 4xx before anything is touched.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from aikore.api.common import json_response, read_json_object, reject_unknown
from aikore.config import SETTINGS
from aikore.errors import AikoreError
from aikore.files import ops
from aikore.files.archive import zip_stream
from aikore.files.confine import relative_to, resolve
from aikore.supervisor import SUPERVISOR

UPLOAD_CHUNK = 1024 * 1024
# Space left free on the disk an upload goes to (logs, the database, other instances).
_RESERVE = 256 * 1024 * 1024


def _root(request: web.Request) -> tuple[str, Path]:
    """The label and folder of the ``{root}`` in the URL."""
    key = request.match_info["root"]
    if key == "models":
        folder = request.app[SETTINGS].models_dir
        assert folder is not None
        folder.mkdir(parents=True, exist_ok=True)
        return "models", folder
    if not (key.isascii() and key.isdigit()) or len(key) > 18:
        raise AikoreError("not_found", "root: 'models' or an instance id", 404, field="root")
    supervisor = request.app[SUPERVISOR]
    instance = supervisor.instance(int(key))
    folder = supervisor.workspace.path(instance.name)
    if not folder.is_dir():
        raise AikoreError("not_found", f"instance {instance.name!r} has no folder", 404)
    return instance.name, folder


def _path(request: web.Request, root: Path, follow: bool = True, value: str | None = None) -> Path:
    return resolve(root, request.query.get("path", "") if value is None else value, follow=follow)


async def _body(request: web.Request, allowed: set[str], required: set[str]) -> dict[str, Any]:
    data = await read_json_object(request)
    reject_unknown(data, allowed)
    # Every field of these bodies is a string; an optional one too when it is given (a number as
    # `path` reached the path resolver and answered 500).
    for name in sorted(required | data.keys()):
        if not isinstance(data.get(name), str):
            raise AikoreError("invalid_field", f"{name}: a string is required", 400, field=name)
    return data


async def list_files(request: web.Request) -> web.Response:
    _, root = _root(request)
    folder = _path(request, root)
    entries = await asyncio.to_thread(ops.list_dir, root, folder)
    return json_response({"path": relative_to(root, folder), "entries": entries})


async def download(request: web.Request) -> web.StreamResponse:
    label, root = _root(request)
    target = _path(request, root)
    if target.is_file():
        return web.FileResponse(target, headers={"Content-Disposition": _attachment(target.name)})
    if not target.is_dir():
        raise AikoreError("not_found", "path: no such file or folder", 404, field="path")
    name = f"{target.name if target != root.resolve() else label}.zip"
    resp = web.StreamResponse(headers={"Content-Type": "application/zip", "Content-Disposition": _attachment(name)})
    await resp.prepare(request)
    async for chunk in zip_stream(target):
        await resp.write(chunk)
    await resp.write_eof()
    return resp


def _attachment(name: str) -> str:
    return f"attachment; filename*=UTF-8''{quote(name)}"


async def upload(request: web.Request) -> web.Response:
    _, root = _root(request)
    target = _path(request, root)
    overwrite = request.query.get("overwrite", "") in ("1", "true")
    if request.content_length is not None:
        free = (await asyncio.to_thread(shutil.disk_usage, target.parent if target.parent.exists() else root)).free
        if request.content_length > free - _RESERVE:
            raise AikoreError("insufficient_storage", f"the disk has {free} bytes free", 507)
    entry = await ops.receive(root, target, request.content.iter_chunked(UPLOAD_CHUNK), overwrite)
    return json_response(entry, status=201)


async def make_dir(request: web.Request) -> web.Response:
    _, root = _root(request)
    data = await _body(request, {"path", "name"}, {"name"})
    parent = _path(request, root, value=data.get("path", ""))
    return json_response(ops.entry_json(root, ops.make_dir(root, parent, data["name"])), status=201)


async def rename(request: web.Request) -> web.Response:
    _, root = _root(request)
    data = await _body(request, {"path", "name"}, {"path", "name"})
    source = _path(request, root, follow=False, value=data["path"])
    return json_response(ops.entry_json(root, ops.rename(root, source, data["name"])))


async def delete(request: web.Request) -> web.Response:
    label, root = _root(request)
    source = _path(request, root, follow=False)
    trash_dir = request.app[SUPERVISOR].workspace.trash_dir
    await asyncio.to_thread(ops.trash, root, source, trash_dir, label)
    return web.Response(status=204)


async def get_text(request: web.Request) -> web.Response:
    _, root = _root(request)
    return json_response(await asyncio.to_thread(ops.read_text, root, _path(request, root)))


async def put_text(request: web.Request) -> web.Response:
    _, root = _root(request)
    data = await _body(request, {"path", "content"}, {"path", "content"})
    target = _path(request, root, value=data["path"])
    return json_response(await asyncio.to_thread(ops.write_text, root, target, data["content"]))


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/files/{root}", list_files)
    r.add_get("/api/files/{root}/download", download)
    r.add_put("/api/files/{root}/upload", upload)
    r.add_post("/api/files/{root}/folders", make_dir)
    r.add_post("/api/files/{root}/rename", rename)
    r.add_delete("/api/files/{root}/entry", delete)
    r.add_get("/api/files/{root}/text", get_text)
    r.add_put("/api/files/{root}/text", put_text)


_ERROR = {"$ref": "#/components/schemas/Error"}


def _err(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


def _ok(description: str, schema: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"description": description, "content": {"application/json": {"schema": ref}}}


_ROOT = {
    "name": "root", "in": "path", "required": True,
    "schema": {"type": "string", "pattern": "^(models|[0-9]{1,18})$"},
    "description": "`models` (the shared models folder) or an instance id (its folder)",
}
_PATH = {
    "name": "path", "in": "query", "required": False, "schema": {"type": "string", "default": ""},
    "description": "Relative to the root, `/`-separated; `..`, absolute paths, NUL and links out are refused",
}
_REFUSED = {
    "400": _err("A bad path (`..`, absolute, NUL) or body"),
    "403": _err("The path leads outside the root (a link)"),
    "404": _err("Unknown root, instance or path"),
}
_JSON_BODY_ERRORS = {"413": _err("Body too large"), "415": _err("Not JSON"), "417": _err("Unsupported Expect")}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


OPENAPI_SCHEMAS: dict[str, Any] = {
    "FileEntry": {
        "type": "object",
        "required": ["name", "path", "type", "size", "mtime"],
        "properties": {
            "name": {"type": "string"},
            "path": {"type": "string", "description": "Relative to the root"},
            "type": {"type": "string", "enum": ["file", "dir", "file-link", "dir-link", "link"]},
            "size": {"type": "integer"},
            "mtime": {"type": "number", "description": "Unix time"},
        },
    },
    "FileListing": {
        "type": "object",
        "required": ["path", "entries"],
        "properties": {
            "path": {"type": "string"},
            "entries": {"type": "array", "items": {"$ref": "#/components/schemas/FileEntry"}},
        },
    },
    "TextFile": {
        "type": "object",
        "required": ["path", "content", "mtime"],
        "properties": {"path": {"type": "string"}, "content": {"type": "string"}, "mtime": {"type": "number"}},
    },
}
OPENAPI_PATHS: dict[str, Any] = {
    "/api/files/{root}": {
        "parameters": [_ROOT],
        "get": {
            "summary": "List a folder: folders first, then files, with sizes and dates",
            "parameters": [_PATH],
            "responses": {"200": _ok("The folder's entries", "FileListing"), **_REFUSED},
        },
    },
    "/api/files/{root}/download": {
        "parameters": [_ROOT],
        "get": {
            "summary": "Download a file (Range supported), or a folder as a zip streamed as it is made",
            "parameters": [_PATH],
            "responses": {
                "200": {"description": "The file, or the folder as a zip", "content": {
                    "application/octet-stream": {}, "application/zip": {}}},
                "206": {"description": "Part of the file", "content": {"application/octet-stream": {}}},
                "416": {"description": "Range not satisfiable"},
                **_REFUSED,
            },
        },
    },
    "/api/files/{root}/upload": {
        "parameters": [_ROOT],
        "put": {
            "summary": "Upload a file: the raw body is streamed to a hidden name, then renamed into place",
            "parameters": [_PATH, {"name": "overwrite", "in": "query", "required": False,
                                   "schema": {"type": "string", "enum": ["0", "1"]}}],
            "requestBody": {"required": True, "content": {"application/octet-stream": {"schema": {
                "type": "string", "format": "binary"}}}},
            "responses": {
                "201": _ok("Stored", "FileEntry"),
                **_REFUSED,
                "409": _err("Exists (without overwrite=1), or is a folder"),
                "417": _err("Unsupported Expect"),
                "507": _err("Not enough free disk space for the announced length"),
            },
        },
    },
    "/api/files/{root}/folders": {
        "parameters": [_ROOT],
        "post": {
            "summary": "Make a folder `name` in the folder `path`",
            "requestBody": _json_body({"type": "object", "required": ["name"], "additionalProperties": False,
                                       "properties": {"path": {"type": "string"}, "name": {"type": "string"}}}),
            "responses": {"201": _ok("Made", "FileEntry"), **_REFUSED, "409": _err("Exists"), **_JSON_BODY_ERRORS},
        },
    },
    "/api/files/{root}/rename": {
        "parameters": [_ROOT],
        "post": {
            "summary": "Rename the entry at `path` to `name` in the same folder",
            "requestBody": _json_body({"type": "object", "required": ["path", "name"], "additionalProperties": False,
                                       "properties": {"path": {"type": "string"}, "name": {"type": "string"}}}),
            "responses": {"200": _ok("Renamed", "FileEntry"), **_REFUSED, "409": _err("The new name exists"),
                          **_JSON_BODY_ERRORS},
        },
    },
    "/api/files/{root}/entry": {
        "parameters": [_ROOT],
        "delete": {
            "summary": "Move a file or folder to the trash (`<data>/trash/files/`)",
            "parameters": [_PATH],
            "responses": {"204": {"description": "Moved to the trash"}, **_REFUSED},
        },
    },
    "/api/files/{root}/text": {
        "parameters": [_ROOT],
        "get": {
            "summary": "A text file for the editor (UTF-8, at most 2 MiB)",
            "parameters": [_PATH],
            "responses": {"200": _ok("The text", "TextFile"), **_REFUSED, "413": _err("Too large"),
                          "415": _err("Not UTF-8 text")},
        },
        "put": {
            "summary": "Replace or create a text file whole (written beside it, then renamed over it)",
            "requestBody": _json_body({"type": "object", "required": ["path", "content"], "additionalProperties": False,
                                       "properties": {"path": {"type": "string"}, "content": {"type": "string"}}}),
            "responses": {"200": _ok("Written", "FileEntry"), **_REFUSED, "409": _err("Is a folder"),
                          **_JSON_BODY_ERRORS},
        },
    },
}
