"""Copies of instances: ``POST /api/instances/{id}/copy`` and the copy jobs under ``/api/copies``.

A copy answers at once (202) with its job; the job's progress and end come through
``GET /api/events`` (``event: copy``) and ``GET /api/copies``. The supervisor's ``Copies`` does
the work (``aikore/supervisor/copies.py``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from aikore.api.common import json_response, read_json_object, reject_unknown
from aikore.api.common import path_id as instance_id
from aikore.config import SETTINGS
from aikore.errors import AikoreError, invalid
from aikore.store import validation as v
from aikore.supervisor import SUPERVISOR
from aikore.supervisor.copies import ENVIRONMENTS, STATES

_FIELDS = {"name", "environment", "gpu_ids", "public_port"}


async def copy_instance(request: web.Request) -> web.Response:
    supervisor = request.app[SUPERVISOR]
    source = instance_id(request)
    supervisor.instance(source)  # 404 before reading the body
    data = await read_json_object(request)
    reject_unknown(data, _FIELDS)
    if "name" not in data:
        raise invalid("name", "the copy needs a name of its own")
    environment = data.get("environment", "fresh")
    if environment not in ENVIRONMENTS:
        raise invalid("environment", "must be 'fresh' (installs its own at its first start) or 'copy' "
                      "(copies the source's app and environment)")
    overrides: dict[str, Any] = {"name": v.check_name(data["name"])}
    if "gpu_ids" in data:
        overrides["gpu_ids"] = v.check_gpu_ids(data["gpu_ids"])
    overrides["public_port"] = v.check_public_port(data.get("public_port"), request.app[SETTINGS].public_ports)
    job = await supervisor.copies.start(source, overrides, environment)
    return json_response(job.to_json(), status=202)


def _job_id(request: web.Request) -> int:
    text = request.match_info["job"]
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise AikoreError("not_found", "copy ids are positive integers", 404)
    return int(text)


async def list_copies(request: web.Request) -> web.Response:
    return json_response([job.to_json() for job in request.app[SUPERVISOR].copies.jobs()])


async def get_copy(request: web.Request) -> web.Response:
    return json_response(request.app[SUPERVISOR].copies.job(_job_id(request)).to_json())


async def cancel_copy(request: web.Request) -> web.Response:
    return json_response(request.app[SUPERVISOR].copies.cancel(_job_id(request)).to_json(), status=202)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/instances/{id}/copy", copy_instance)
    r.add_get("/api/copies", list_copies)
    r.add_get("/api/copies/{job}", get_copy)
    r.add_delete("/api/copies/{job}", cancel_copy)


_ERROR = {"$ref": "#/components/schemas/Error"}
_JOB = {"$ref": "#/components/schemas/CopyJob"}
_JOB_ID = {"name": "job", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}


def _resp(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


OPENAPI_SCHEMAS: dict[str, Any] = {
    "CopyRequest": {
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "pattern": v.NAME_RE.pattern},
            "environment": {
                "type": "string", "enum": list(ENVIRONMENTS), "default": "fresh",
                "description": "fresh: script and settings only, the copy installs its own environment at its "
                "first start; copy: also the source's app and environment (its config/ folder), copy-on-write "
                "where the filesystem allows",
            },
            "gpu_ids": {"type": ["string", "null"], "description": "In place of the source's GPUs"},
            "public_port": {"type": ["integer", "null"], "description": "Not copied (ports are unique)"},
        },
    },
    "CopyJob": {
        "type": "object",
        "required": ["id", "source_id", "source_name", "name", "environment", "state", "files_total",
                     "bytes_total", "files_done", "bytes_done", "reflinked", "error", "instance_id"],
        "properties": {
            "id": {"type": "integer"},
            "source_id": {"type": "integer"},
            "source_name": {"type": "string"},
            "name": {"type": "string", "description": "The new instance's name (held while the copy runs)"},
            "environment": {"type": "string", "enum": list(ENVIRONMENTS)},
            "state": {"type": "string", "enum": list(STATES)},
            "files_total": {"type": "integer"},
            "bytes_total": {"type": "integer"},
            "files_done": {"type": "integer"},
            "bytes_done": {"type": "integer"},
            "reflinked": {"type": "integer", "description": "Files shared copy-on-write instead of copied"},
            "error": {"type": ["string", "null"]},
            "instance_id": {"type": ["integer", "null"], "description": "The new instance, once done"},
            "started_at": {"type": "number"},
            "finished_at": {"type": ["number", "null"]},
        },
    },
}

OPENAPI_PATHS: dict[str, Any] = {
    "/api/instances/{id}/copy": {
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}],
        "post": {
            "summary": "Copy an instance in the background (the source keeps running); answers with the job",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CopyRequest"}}},
            },
            "responses": {
                "202": _resp("The copy job, copying", _JOB),
                "400": _resp("Invalid input", _ERROR),
                "404": _resp("Unknown instance", _ERROR),
                "409": _resp("Name or public port taken; a satellite copied with its environment", _ERROR),
                "413": _resp("Body too large", _ERROR),
            },
        },
    },
    "/api/copies": {
        "get": {
            "summary": "Copies under way and the last ones that ended",
            "responses": {"200": _resp("Copy jobs", {"type": "array", "items": _JOB})},
        },
    },
    "/api/copies/{job}": {
        "parameters": [_JOB_ID],
        "get": {
            "summary": "One copy job",
            "responses": {"200": _resp("The job", _JOB), "404": _resp("Unknown copy", _ERROR)},
        },
        "delete": {
            "summary": "Cancel a copy: it stops at its next file, and no instance (nor any folder) is left of it",
            "responses": {
                "202": _resp("Cancelling", _JOB),
                "404": _resp("Unknown copy", _ERROR),
                "409": _resp("The copy already ended", _ERROR),
            },
        },
    },
}
