"""The model library: ``/api/models`` (the tree), its downloads and the secrets they use.

Views only: the tree, the sources and the download queue belong to ``aikore.models``.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from aikore.api.common import json_response, read_json_object, reject_unknown
from aikore.config import SETTINGS
from aikore.errors import invalid
from aikore.events import EVENTS
from aikore.models import DOWNLOADS, LIBRARY, SOURCES
from aikore.models.download import Download
from aikore.models.events import ModelsChanged
from aikore.models.library import KINDS, ModelFile, check_kind, check_relpath, linked_kinds
from aikore.models.sources import check_http_url, check_sha256
from aikore.store import WORKSPACE
from aikore.supervisor import SUPERVISOR

_DOWNLOAD_FIELDS = ("source", "url", "repo", "file", "revision", "model_id", "version_id", "kind", "filename", "sha256")
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", "::"})


def download_json(download: Download) -> dict[str, Any]:
    """The one place a download becomes JSON (API answers and the events stream)."""
    return {
        "id": download.id,
        "url": download.url,
        "source": download.source,
        "kind": download.kind,
        "filename": download.filename,
        "sha256": download.sha256,
        "state": download.state,
        "total_bytes": download.total,
        "received_bytes": download.received,
        "speed_bytes_per_second": round(download.speed, 1),
        "eta_seconds": None if download.eta is None else round(download.eta, 1),
        "error": download.error,
        "created": download.created,
        "finished": download.finished,
    }


def _file_json(request: web.Request, model: ModelFile) -> dict[str, Any]:
    info = request.app[LIBRARY].info(model.kind, model.path)
    return {
        "kind": model.kind,
        "path": model.path,
        "size_bytes": model.size,
        "modified": model.modified,
        "source": info.get("source"),
        "sha256": info.get("sha256"),
    }


def _instances_by_kind(request: web.Request) -> dict[str, list[dict[str, Any]]]:
    """Which instances link each kind, read from their launch scripts."""
    seen: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    workspace = request.app[WORKSPACE]
    for instance in request.app[SUPERVISOR].instances():
        try:
            script = workspace.script_path(instance.name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for kind in linked_kinds(script):
            seen[kind].append({"id": instance.id, "name": instance.name})
    return seen


async def list_models(request: web.Request) -> web.Response:
    library = request.app[LIBRARY]
    instances = _instances_by_kind(request)
    kinds = []
    for kind, files in library.tree().items():
        kinds.append(
            {
                "kind": kind,
                "count": len(files),
                "total_bytes": sum(f.size for f in files),
                "instances": instances[kind],
                "files": [_file_json(request, f) for f in files],
            }
        )
    return json_response({"models_dir": str(library.root), "disk": library.disk(), "kinds": kinds})


async def move_model(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    reject_unknown(body, ("kind", "path", "new_kind", "new_path"))
    kind, path = check_kind(body.get("kind")), check_relpath(body.get("path"))
    new_kind = check_kind(body.get("new_kind", kind)) if body.get("new_kind") is not None else kind
    new_path = check_relpath(body.get("new_path", path), "new_path")
    if (new_kind, new_path) == (kind, path):
        raise invalid("new_path", "give a new name or a new kind")
    library = request.app[LIBRARY]
    moved = library.move(kind, path, new_kind, new_path)
    _announce(request, kind, new_kind)
    return json_response(_file_json(request, moved))


async def delete_model(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    reject_unknown(body, ("kind", "path"))
    kind, path = check_kind(body.get("kind")), check_relpath(body.get("path"))
    # The trash may sit on another disk than the models: a move can be a long copy, off the loop.
    trashed = await asyncio.to_thread(request.app[LIBRARY].delete, kind, path)
    _announce(request, kind)
    return json_response({"kind": kind, "path": path, "trashed_to": str(trashed)})


def _announce(request: web.Request, *kinds: str) -> None:
    for kind in dict.fromkeys(kinds):
        request.app[EVENTS].publish(ModelsChanged(kind))


async def list_downloads(request: web.Request) -> web.Response:
    return json_response({"downloads": [download_json(d) for d in request.app[DOWNLOADS].list()]})


async def add_download(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    reject_unknown(body, _DOWNLOAD_FIELDS)
    kind = check_kind(body.get("kind"))
    filename = check_relpath(body["filename"], "filename") if body.get("filename") else None
    sha256 = check_sha256(body.get("sha256"))
    if body.get("url") is not None and not (isinstance(body["url"], int) or str(body["url"]).strip().isdigit()):
        _refuse_self(request, check_http_url(body.get("url")))
    downloads = request.app[DOWNLOADS]
    resolved = await request.app[SOURCES].resolve(body, downloads.session)
    _refuse_self(request, resolved.url)
    download = downloads.add(resolved, kind, filename, sha256)
    return json_response(download_json(download), status=202)


def _refuse_self(request: web.Request, url: str) -> None:
    """A download from AiKore's own address would fetch the API (and the token with it) into a model."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    own_hosts = {*_LOOPBACK_NAMES, (request.url.host or "").lower(), request.app[SETTINGS].host.lower()}
    own_ports = {request.app[SETTINGS].port}
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if sockname:
        own_ports.add(sockname[1])
    if request.url.port:
        own_ports.add(request.url.port)
    if host in own_hosts and port in own_ports:
        raise invalid("url", f"points at AiKore itself ({host}:{port}); give the address of a file to download")


def _download_id(request: web.Request) -> str:
    return request.match_info["id"]


async def get_download(request: web.Request) -> web.Response:
    return json_response(download_json(request.app[DOWNLOADS].get(_download_id(request))))


async def cancel_download(request: web.Request) -> web.Response:
    return json_response(download_json(request.app[DOWNLOADS].cancel(_download_id(request))))


async def retry_download(request: web.Request) -> web.Response:
    return json_response(download_json(request.app[DOWNLOADS].retry(_download_id(request))))


async def remove_download(request: web.Request) -> web.Response:
    downloads = request.app[DOWNLOADS]
    downloads.get(_download_id(request))
    downloads.remove(_download_id(request))
    return web.Response(status=204)


async def get_secrets(request: web.Request) -> web.Response:
    return json_response({name: {"set": is_set} for name, is_set in request.app[SOURCES].secrets.status().items()})


async def put_secret(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    reject_unknown(body, ("value",))
    value = body.get("value")
    if not isinstance(value, str) or not value.strip() or len(value) > 4096 or any(c in value for c in "\r\n\0"):
        raise invalid("value", "must be the token as one line of text")
    secrets = request.app[SOURCES].secrets
    secrets.set(request.match_info["name"], value)
    return await get_secrets(request)


async def delete_secret(request: web.Request) -> web.Response:
    request.app[SOURCES].secrets.clear(request.match_info["name"])
    return await get_secrets(request)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/models", list_models)
    r.add_post("/api/models/move", move_model)
    r.add_post("/api/models/delete", delete_model)
    r.add_get("/api/models/downloads", list_downloads)
    r.add_post("/api/models/downloads", add_download)
    r.add_get("/api/models/downloads/{id}", get_download)
    r.add_post("/api/models/downloads/{id}/cancel", cancel_download)
    r.add_post("/api/models/downloads/{id}/retry", retry_download)
    r.add_delete("/api/models/downloads/{id}", remove_download)
    r.add_get("/api/models/secrets", get_secrets)
    r.add_put("/api/models/secrets/{name}", put_secret)
    r.add_delete("/api/models/secrets/{name}", delete_secret)


_ERROR = {"$ref": "#/components/schemas/Error"}
_DOWNLOAD = {"$ref": "#/components/schemas/ModelDownload"}
_SECRETS = {"$ref": "#/components/schemas/ModelSecrets"}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_NAME = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "enum": ["huggingface", "civitai"]},
}
_NULLABLE_STRING = {"type": ["string", "null"]}


def _resp(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out["content"] = {"application/json": {"schema": schema}}
    return out


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "Invalid input (the message names the field)",
        404: "No such model, download or secret",
        409: "The target already exists or is being downloaded",
        413: "Body too large",
        507: "Not enough disk space for the file",
    }
    return {str(c): _resp(text[c], _ERROR) for c in codes}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_MODEL_FILE = {
    "type": "object",
    "required": ["kind", "path", "size_bytes", "modified", "source", "sha256"],
    "properties": {
        "kind": {"type": "string", "enum": list(KINDS)},
        "path": {"type": "string", "description": "Relative to the kind's folder, '/'-separated"},
        "size_bytes": {"type": "integer"},
        "modified": {"type": "number", "description": "Unix time"},
        "source": {**_NULLABLE_STRING, "description": "The URL it was downloaded from, when AiKore downloaded it"},
        "sha256": {**_NULLABLE_STRING, "description": "Checked or computed when AiKore downloaded it"},
    },
}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "ModelFile": _MODEL_FILE,
    "ModelLibrary": {
        "type": "object",
        "required": ["models_dir", "disk", "kinds"],
        "properties": {
            "models_dir": {"type": "string"},
            "disk": {
                "type": "object",
                "required": ["total_bytes", "free_bytes"],
                "properties": {"total_bytes": {"type": "integer"}, "free_bytes": {"type": "integer"}},
            },
            "kinds": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["kind", "count", "total_bytes", "instances", "files"],
                    "properties": {
                        "kind": {"type": "string", "enum": list(KINDS)},
                        "count": {"type": "integer"},
                        "total_bytes": {"type": "integer"},
                        "instances": {
                            "type": "array",
                            "description": "Instances whose launch script links this kind",
                            "items": {
                                "type": "object",
                                "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
                            },
                        },
                        "files": {"type": "array", "items": {"$ref": "#/components/schemas/ModelFile"}},
                    },
                },
            },
        },
    },
    "ModelMove": {
        "type": "object",
        "required": ["kind", "path"],
        "additionalProperties": False,
        "properties": {
            "kind": {"type": "string", "enum": list(KINDS)},
            "path": {"type": "string"},
            "new_kind": {"type": "string", "enum": list(KINDS), "description": "Defaults to kind"},
            "new_path": {"type": "string", "description": "Defaults to path"},
        },
    },
    "ModelRef": {
        "type": "object",
        "required": ["kind", "path"],
        "additionalProperties": False,
        "properties": {"kind": {"type": "string", "enum": list(KINDS)}, "path": {"type": "string"}},
    },
    "ModelDownloadCreate": {
        "type": "object",
        "required": ["kind"],
        "additionalProperties": False,
        "description": (
            "A direct link (`url`); a Hugging Face file (`source: huggingface` with `url` "
            "`.../<owner>/<repo>/resolve/<rev>/<file>` or `repo` + `file` [+ `revision`]); a CivitAI model "
            "(`source: civitai` with a model page or download `url`, a model id in `url`/`model_id`, or "
            "`version_id`). Hugging Face and CivitAI links given as plain `url` are recognised too."
        ),
        "properties": {
            "source": {"type": "string", "enum": ["url", "huggingface", "civitai"], "default": "url"},
            "url": {"type": ["string", "integer"]},
            "repo": {"type": "string"},
            "file": {"type": "string"},
            "revision": {"type": "string"},
            "model_id": {"type": ["string", "integer"]},
            "version_id": {"type": ["string", "integer"]},
            "kind": {"type": "string", "enum": list(KINDS)},
            "filename": {"type": "string", "description": "Defaults to the source's name for the file"},
            "sha256": {"type": "string", "description": "Expected checksum; defaults to the source's"},
        },
    },
    "ModelDownload": {
        "type": "object",
        "required": ["id", "url", "source", "kind", "filename", "state", "total_bytes", "received_bytes"],
        "properties": {
            "id": {"type": "string"},
            "url": {"type": "string"},
            "source": {"type": "string", "enum": ["direct", "huggingface", "civitai"]},
            "kind": {"type": "string", "enum": list(KINDS)},
            "filename": _NULLABLE_STRING,
            "sha256": _NULLABLE_STRING,
            "state": {"type": "string", "enum": ["queued", "downloading", "verifying", "done", "failed", "cancelled"]},
            "total_bytes": {"type": ["integer", "null"]},
            "received_bytes": {"type": "integer"},
            "speed_bytes_per_second": {"type": "number"},
            "eta_seconds": {"type": ["number", "null"]},
            "error": _NULLABLE_STRING,
            "created": {"type": "number"},
            "finished": {"type": ["number", "null"]},
        },
    },
    "ModelSecrets": {
        "type": "object",
        "description": "Whether each secret is set; the secrets themselves are never returned",
        "properties": {
            name: {"type": "object", "properties": {"set": {"type": "boolean"}}} for name in ("huggingface", "civitai")
        },
    },
    "ModelSecret": {
        "type": "object",
        "required": ["value"],
        "additionalProperties": False,
        "properties": {"value": {"type": "string", "description": "A Hugging Face access token or CivitAI API key"}},
    },
}

OPENAPI_PATHS: dict[str, Any] = {
    "/api/models": {
        "get": {
            "summary": "The shared model tree by kind: files, totals, free disk, the instances that see each kind",
            "responses": {"200": _resp("The tree", {"$ref": "#/components/schemas/ModelLibrary"})},
        }
    },
    "/api/models/move": {
        "post": {
            "summary": "Rename a model or move it to another kind (never over an existing file)",
            "requestBody": _body({"$ref": "#/components/schemas/ModelMove"}),
            "responses": {
                "200": _resp("Moved", {"$ref": "#/components/schemas/ModelFile"}),
                **_errors(400, 404, 409, 413),
            },
        }
    },
    "/api/models/delete": {
        "post": {
            "summary": "Move a model to the trash (<data>/trash)",
            "requestBody": _body({"$ref": "#/components/schemas/ModelRef"}),
            "responses": {
                "200": _resp(
                    "Trashed",
                    {
                        "type": "object",
                        "properties": {
                            "kind": {"type": "string"},
                            "path": {"type": "string"},
                            "trashed_to": {"type": "string"},
                        },
                    },
                ),
                **_errors(400, 404, 413),
            },
        }
    },
    "/api/models/downloads": {
        "get": {
            "summary": "Downloads: queued, running, finished, failed and cancelled",
            "responses": {
                "200": _resp(
                    "Downloads", {"type": "object", "properties": {"downloads": {"type": "array", "items": _DOWNLOAD}}}
                )
            },
        },
        "post": {
            "summary": "Queue a download into a kind (progress follows on /api/events as `event: download`)",
            "requestBody": _body({"$ref": "#/components/schemas/ModelDownloadCreate"}),
            "responses": {"202": _resp("Queued", _DOWNLOAD), **_errors(400, 409, 413, 507)},
        },
    },
    "/api/models/downloads/{id}": {
        "get": {
            "summary": "One download",
            "parameters": [_ID],
            "responses": {"200": _resp("The download", _DOWNLOAD), **_errors(404)},
        },
        "delete": {
            "summary": "Forget a download (cancelling it first if it is still going)",
            "parameters": [_ID],
            "responses": {"204": _resp("Removed"), **_errors(404)},
        },
    },
    "/api/models/downloads/{id}/cancel": {
        "post": {
            "summary": "Cancel a queued or running download; its partial file is removed",
            "parameters": [_ID],
            "responses": {"200": _resp("The download", _DOWNLOAD), **_errors(404)},
        }
    },
    "/api/models/downloads/{id}/retry": {
        "post": {
            "summary": "Queue a failed or cancelled download again, from its first byte",
            "parameters": [_ID],
            "responses": {"200": _resp("The download, queued", _DOWNLOAD), **_errors(404, 409)},
        }
    },
    "/api/models/secrets": {
        "get": {"summary": "Which download secrets are set", "responses": {"200": _resp("Secrets", _SECRETS)}},
    },
    "/api/models/secrets/{name}": {
        "put": {
            "summary": "Set the Hugging Face access token or CivitAI API key (kept in <data>/secrets, mode 600)",
            "parameters": [_NAME],
            "requestBody": _body({"$ref": "#/components/schemas/ModelSecret"}),
            "responses": {"200": _resp("Secrets", _SECRETS), **_errors(400, 404, 413)},
        },
        "delete": {
            "summary": "Forget a secret",
            "parameters": [_NAME],
            "responses": {"200": _resp("Secrets", _SECRETS), **_errors(404)},
        },
    },
}
