"""App versions of an instance: ``/api/instances/{id}/version`` and its ``update`` and ``rollback``.

``GET`` says what the instance's app runs (commit, tag, the script's pin), the newest release of
its remote (``unknown`` when the remote cannot be asked) and the snapshots a rollback can use.
``update`` and ``rollback`` answer once the instance has been started again (``starting``): the
install and the app's start are followed like any start.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from aikore.api.common import json_response, path_id, read_json_object, reject_unknown
from aikore.api.instances import instance_json
from aikore.errors import AikoreError
from aikore.supervisor import SUPERVISOR
from aikore.versions import VERSIONS
from aikore.versions.snapshots import Snapshot
from aikore.versions.updater import VersionInfo


def _iso(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


def snapshot_json(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "id": snapshot.id,
        "created_at": _iso(snapshot.created_at),
        "reason": snapshot.reason,
        "commit": snapshot.commit,
        "tag": snapshot.tag,
        "pinned": snapshot.pinned,
        "variable": snapshot.variable,
        "app_path": snapshot.app_path,
        "env_path": snapshot.env_path,
        "packages": snapshot.package_count,
    }


def version_json(info: VersionInfo) -> dict[str, Any]:
    app = info.app
    releases = info.releases
    return {
        "instance_id": info.instance.id,
        "installed_in": {"id": info.installed_in.id, "name": info.installed_in.name},
        "app": None if app is None else {
            "path": info.app_path,
            "remote": app.remote,
            "commit": app.commit,
            "tag": app.tag,
            "checked_out_ref": app.checked_out_ref,
        },
        "pinned": None if info.pin is None else {"variable": info.pin.variable, "ref": info.pin.value},
        "latest": None if releases is None else {
            "status": "known" if releases.known else "unknown",
            "tag": releases.latest,
            "checked_at": _iso(releases.checked_at),
            "reason": releases.error,
        },
        "update_available": info.update_available,
        "operation": None if info.operation is None else {
            "kind": info.operation.kind, "target": info.operation.target, "since": _iso(info.operation.since),
        },
        "snapshots": [snapshot_json(s) for s in info.snapshots],
        "keep_snapshots": info.keep,
    }


async def _body(request: web.Request, allowed: frozenset[str]) -> dict[str, Any]:
    # Both actions work without a body (the newest release, the newest snapshot).
    if not request.can_read_body:
        return {}
    data = await read_json_object(request)
    reject_unknown(data, allowed)
    return data


def _text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise AikoreError("invalid_field", f"{key}: must be a string", 400, field=key)
    return value or None


async def get_version(request: web.Request) -> web.Response:
    refresh = request.query.get("refresh") in ("1", "true")
    return json_response(version_json(await request.app[VERSIONS].info(path_id(request), refresh=refresh)))


async def post_update(request: web.Request) -> web.Response:
    instance_id = path_id(request)
    request.app[SUPERVISOR].instance(instance_id)
    ref = _text(await _body(request, frozenset({"ref"})), "ref")
    instance, snapshot, target = await request.app[VERSIONS].update(instance_id, ref)
    return _answer(request, instance, snapshot, target)


async def post_rollback(request: web.Request) -> web.Response:
    instance_id = path_id(request)
    request.app[SUPERVISOR].instance(instance_id)
    snapshot_id = _text(await _body(request, frozenset({"snapshot"})), "snapshot")
    instance, snapshot = await request.app[VERSIONS].rollback(instance_id, snapshot_id)
    return _answer(request, instance, snapshot, snapshot.tag or snapshot.pinned)


def _answer(request: web.Request, instance: Any, snapshot: Snapshot, target: str) -> web.Response:
    runtime = request.app[SUPERVISOR].runtime(instance)
    return json_response({
        "instance": instance_json(request.app, instance, runtime, request),
        "snapshot": snapshot_json(snapshot),
        "target": target,
    })


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/instances/{id}/version", get_version)
    r.add_post("/api/instances/{id}/version/update", post_update)
    r.add_post("/api/instances/{id}/version/rollback", post_rollback)


_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
_NULLABLE_STRING = {"type": ["string", "null"]}


def _errors(text: dict[int, str]) -> dict[str, Any]:
    return {str(code): {"description": what, "content": _ERROR} for code, what in text.items()}


def _action(summary: str, body: dict[str, Any], errors: dict[int, str]) -> dict[str, Any]:
    return {
        "parameters": [_ID],
        "post": {
            "summary": summary,
            "requestBody": {"required": False, "content": {"application/json": {"schema": body}}},
            "responses": {
                "200": {
                    "description": "The instance, started again (`starting`), and the snapshot taken or used",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/VersionChange"}}},
                },
                **_errors(errors),
            },
        },
    }


OPENAPI_SCHEMAS: dict[str, Any] = {
    "Snapshot": {
        "type": "object",
        "required": ["id", "created_at", "reason", "commit", "tag", "pinned", "variable", "packages"],
        "properties": {
            "id": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "reason": {"type": "string"},
            "commit": {"type": "string", "description": "The app's commit when it was taken"},
            "tag": _NULLABLE_STRING,
            "pinned": {"type": "string", "description": "The script's pinned ref then"},
            "variable": {"type": "string", "description": "The script's variable holding the ref, e.g. COMFYUI_REF"},
            "app_path": {"type": "string"},
            "env_path": _NULLABLE_STRING,
            "packages": {"type": ["integer", "null"], "description": "Packages in the frozen set (null: no env)"},
        },
    },
    "Version": {
        "type": "object",
        "required": ["instance_id", "app", "pinned", "latest", "update_available", "operation", "snapshots"],
        "properties": {
            "instance_id": {"type": "integer"},
            "installed_in": {
                "type": "object",
                "description": "The instance whose folder holds the app: itself, or a satellite's parent "
                "(update and roll back that one)",
                "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
            },
            "app": {
                "type": ["object", "null"],
                "description": "The app's git checkout; null before the first start cloned it",
                "properties": {
                    "path": {"type": "string"},
                    "remote": _NULLABLE_STRING,
                    "commit": {"type": "string"},
                    "tag": _NULLABLE_STRING,
                    "checked_out_ref": _NULLABLE_STRING,
                },
            },
            "pinned": {
                "type": ["object", "null"],
                "description": "VARIABLE=${VARIABLE:-ref} in launch.sh; null when the script pins no app",
                "properties": {"variable": {"type": "string"}, "ref": {"type": "string"}},
            },
            "latest": {
                "type": ["object", "null"],
                "description": "The remote's newest release tag (git ls-remote, cached); unknown when it "
                "could not be asked",
                "properties": {
                    "status": {"type": "string", "enum": ["known", "unknown"]},
                    "tag": _NULLABLE_STRING,
                    "checked_at": {"type": "string", "format": "date-time"},
                    "reason": _NULLABLE_STRING,
                },
            },
            "update_available": {"type": ["boolean", "null"], "description": "null: unknown"},
            "operation": {
                "type": ["object", "null"],
                "properties": {
                    "kind": {"type": "string", "enum": ["update", "rollback"]},
                    "target": {"type": "string"},
                    "since": {"type": "string", "format": "date-time"},
                },
            },
            "snapshots": {"type": "array", "items": {"$ref": "#/components/schemas/Snapshot"},
                          "description": "Newest first"},
            "keep_snapshots": {"type": "integer"},
        },
    },
    "VersionChange": {
        "type": "object",
        "required": ["instance", "snapshot", "target"],
        "properties": {
            "instance": {"$ref": "#/components/schemas/Instance"},
            "snapshot": {"$ref": "#/components/schemas/Snapshot"},
            "target": {"type": "string"},
        },
    },
}

OPENAPI_PATHS: dict[str, Any] = {
    "/api/instances/{id}/version": {
        "parameters": [_ID],
        "get": {
            "summary": "The app's version, the newest release of its remote and the snapshots",
            "parameters": [{"name": "refresh", "in": "query", "required": False,
                            "schema": {"type": "string", "enum": ["1", "true"]},
                            "description": "Ask the remote again instead of the cached answer"}],
            "responses": {
                "200": {"description": "Version", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Version"}}}},
                **_errors({404: "Unknown instance"}),
            },
        },
    },
    "/api/instances/{id}/version/update": _action(
        "Snapshot (app commit + `uv pip freeze`), move the script's pin to `ref` (default: the newest release) "
        "and start again: the blueprint fetches and installs it",
        {"type": "object", "properties": {"ref": {"type": "string", "description": "A tag of the app's remote"}},
         "additionalProperties": False},
        {400: "Invalid body", 404: "Unknown instance", 409: "No git checkout, busy, up to date, local changes, "
         "or the newest release is unknown", 422: "No pinned ref in the script, or no such tag", 500:
         "The snapshot could not be taken (nothing was changed)"},
    ),
    "/api/instances/{id}/version/rollback": _action(
        "Stop, check the snapshot's commit out, `uv pip sync` its package set, put its pin back, start again",
        {"type": "object", "properties": {"snapshot": {"type": "string", "description": "Default: the newest"}},
         "additionalProperties": False},
        {400: "Invalid body", 404: "Unknown instance or snapshot", 409: "No snapshot, busy, local changes",
         500: "Putting the snapshot back failed (the instance stays stopped; the snapshot is kept)"},
    ),
}
