"""Instance CRUD and launch-script views: ``/api/instances`` and ``/api/instances/{id}[/script]``."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from aiohttp import web

from aikore import keys
from aikore.api.common import json_response, path_id, read_json_object, reject_unknown
from aikore.desktop.companion import check_fps, check_resolution
from aikore.errors import AikoreError, not_found
from aikore.store.instance import Instance
from aikore.store.validation import (
    check_blueprint_id,
    check_bool,
    check_gpu_ids,
    check_name,
    check_public_port,
    check_restart_policy,
)
from aikore.supervisor.states import STOPPED_STATES

CREATE_FIELDS = {"name", "blueprint", "gpu_ids", "autostart", "persistent_mode", "public_port", "restart_policy",
                 "desktop_resolution", "desktop_fps"}
PATCH_FIELDS = CREATE_FIELDS - {"blueprint"}
# Safe to change while the process runs: they only matter at the next start or crash.
LIVE_FIELDS = {"autostart", "restart_policy", "desktop_resolution", "desktop_fps"}
MAX_SCRIPT = 512 * 1024

# Serialises creates, renames and deletes so the name/folder/row checks and changes are atomic.
MUTATION_LOCK = web.AppKey("instances_mutation_lock", asyncio.Lock)


def instance_json(app: web.Application, instance: Instance, request: web.Request | None = None) -> dict[str, Any]:
    """Stored fields plus where to open it and whatever the registered hooks add.

    ``request`` (when there is one) gives the host the browser used, for public-port URLs; events
    published outside a request fall back to the configured host.
    """
    data = instance.to_json()
    meta = app[keys.WORKSPACE].metadata(instance.name, instance.blueprint)
    data["proxy_mode"] = meta.proxy_mode
    data["url"] = _open_url(app, instance, meta.proxy_mode, request)
    for hook in app[keys.INSTANCE_JSON_HOOKS]:
        hook(app, instance, data)
    return data


def _open_url(app: web.Application, instance: Instance, mode: str, request: web.Request | None) -> str | None:
    if mode != "port-only":
        return f"/app/{instance.name}/"
    if instance.public_port is None:
        return None
    # Same host the browser used for the dashboard, on the instance's own port.
    if request is not None:
        scheme, host = request.scheme, request.url.host or "127.0.0.1"
    else:
        scheme, host = "http", app[keys.SETTINGS].host
        host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{instance.public_port}/"


async def load_instance(request: web.Request) -> Instance:
    instance_id = path_id(request)
    instance = await request.app[keys.STORE].get_instance(instance_id)
    if instance is None:
        raise not_found("instance", instance_id)
    return instance


def publish_instance(app: web.Application, instance: Instance) -> None:
    """Tell listeners (route table, live dashboards) about an instance's new state."""
    app[keys.EVENTS].publish("instance", instance_json(app, instance))


async def list_instances(request: web.Request) -> web.Response:
    instances = await request.app[keys.STORE].list_instances()
    return json_response([instance_json(request.app, i, request) for i in instances])


async def get_instance(request: web.Request) -> web.Response:
    return json_response(instance_json(request.app, await load_instance(request), request))


async def create_instance(request: web.Request) -> web.Response:
    app = request.app
    data = await read_json_object(request)
    reject_unknown(data, CREATE_FIELDS)
    fields: dict[str, Any] = {
        "name": check_name(data.get("name")),
        "blueprint": check_blueprint_id(data.get("blueprint")),
        "gpu_ids": check_gpu_ids(data.get("gpu_ids")),
        "autostart": check_bool("autostart", data.get("autostart", False)),
        "persistent_mode": check_bool("persistent_mode", data.get("persistent_mode", False)),
        "restart_policy": check_restart_policy(data.get("restart_policy", "never")),
        "public_port": check_public_port(data.get("public_port"), app[keys.SETTINGS].public_ports),
        "desktop_resolution": check_resolution(data.get("desktop_resolution")),
        "desktop_fps": check_fps(data.get("desktop_fps")),
    }
    blueprint = app[keys.BLUEPRINTS].get(fields["blueprint"])
    if blueprint is None:
        raise AikoreError(
            "unknown_blueprint", f"blueprint: no blueprint with id {fields['blueprint']!r}", 400, field="blueprint",
        )
    store, workspace = app[keys.STORE], app[keys.WORKSPACE]
    async with app[MUTATION_LOCK]:
        await _check_free(request, fields["name"], fields["public_port"], exclude_id=None)
        staging = workspace.prepare(fields["name"], blueprint.path)
        try:
            instance = await _insert(store, fields)
            try:
                workspace.commit(staging, fields["name"])
            except BaseException:
                await store.delete_instance(instance.id)
                raise
        except BaseException:
            workspace.discard(staging)
            raise
    publish_instance(request.app, instance)
    return json_response(instance_json(request.app, instance, request), status=201)


async def _insert(store: Any, fields: dict[str, Any]) -> Instance:
    try:
        return await store.insert_instance(**fields)
    except sqlite3.IntegrityError:
        # The checks above ran under the lock, so only another AiKore on the same DB gets here.
        raise AikoreError("conflict", "name or public_port was taken meanwhile; retry", 409) from None


async def _check_free(request: web.Request, name: str | None, public_port: int | None, exclude_id: int | None) -> None:
    app = request.app
    instances = await app[keys.STORE].list_instances()
    others = [i for i in instances if i.id != exclude_id]
    if name is not None:
        if any(i.name == name for i in others):
            raise AikoreError(
                "name_taken", f"name: an instance named {name!r} already exists", 409, field="name",
            )
        if app[keys.WORKSPACE].exists(name):
            raise AikoreError(
                "folder_exists",
                f"name: folder instances/{name}/ already exists on disk; move it or pick another name",
                409,
                field="name",
            )
    if public_port is not None:
        holder = next((i for i in others if i.public_port == public_port), None)
        if holder is not None:
            raise AikoreError(
                "public_port_unavailable",
                f"public_port: {public_port} is already used by instance {holder.name!r}",
                409,
                field="public_port",
            )


async def patch_instance(request: web.Request) -> web.Response:
    app = request.app
    data = await read_json_object(request)
    reject_unknown(data, PATCH_FIELDS)
    changes: dict[str, Any] = {}
    checks = {
        "name": check_name,
        "gpu_ids": check_gpu_ids,
        "autostart": lambda v: check_bool("autostart", v),
        "persistent_mode": lambda v: check_bool("persistent_mode", v),
        "restart_policy": check_restart_policy,
        "public_port": lambda v: check_public_port(v, app[keys.SETTINGS].public_ports),
        "desktop_resolution": check_resolution,
        "desktop_fps": check_fps,
    }
    for field, check in checks.items():
        if field in data:
            changes[field] = check(data[field])
    store, workspace = app[keys.STORE], app[keys.WORKSPACE]
    async with app[MUTATION_LOCK]:
        instance = await load_instance(request)
        changes = {k: v for k, v in changes.items() if getattr(instance, k) != v}
        live_only = set(changes) <= LIVE_FIELDS
        if not live_only and instance.status not in STOPPED_STATES:
            fields = ", ".join(sorted(set(changes) - LIVE_FIELDS))
            raise AikoreError("instance_running", f"{fields}: stop the instance before changing this", 409)
        new_name = changes.get("name")
        await _check_free(request, new_name, changes.get("public_port"), exclude_id=instance.id)
        if new_name is not None:
            workspace.rename(instance.name, new_name)
        try:
            updated = await store.update_instance(instance.id, **changes) if changes else instance
        except BaseException:
            if new_name is not None:
                workspace.rename(new_name, instance.name)
            raise
    assert updated is not None
    if changes:
        if new_name is not None:
            app[keys.EVENTS].publish("instance_deleted", {"id": instance.id, "name": instance.name, "renamed": True})
        publish_instance(request.app, updated)
    return json_response(instance_json(request.app, updated, request))


async def delete_instance(request: web.Request) -> web.Response:
    app = request.app
    async with app[MUTATION_LOCK]:
        instance = await load_instance(request)
        for stop in app[keys.BEFORE_DELETE]:
            await stop(instance)
        instance = await load_instance(request)
        if instance.status not in STOPPED_STATES:
            raise AikoreError("instance_running", "instance is still running; stop it first", 409)
        await app[keys.STORE].delete_instance(instance.id)
        retired = app[keys.WORKSPACE].retire(instance.name)
    app[keys.EVENTS].publish("instance_deleted", {"id": instance.id, "name": instance.name})
    return json_response(
        {"deleted": instance.id, "name": instance.name, "folder_moved_to": str(retired) if retired else None}
    )


async def get_script(request: web.Request) -> web.Response:
    instance = await load_instance(request)
    workspace = request.app[keys.WORKSPACE]
    try:
        content = workspace.read_script(instance.name)
    except FileNotFoundError:
        raise AikoreError("script_missing", f"instances/{instance.name}/launch.sh does not exist", 404) from None
    return json_response({"id": instance.id, "name": instance.name, "content": content})


async def put_script(request: web.Request) -> web.Response:
    instance = await load_instance(request)
    data = await read_json_object(request)
    reject_unknown(data, {"content"})
    content = data.get("content")
    if not isinstance(content, str):
        raise AikoreError("invalid_field", "content: must be the script text as a string", 400, field="content")
    if len(content.encode("utf-8", errors="surrogatepass")) > MAX_SCRIPT:
        raise AikoreError(
            "payload_too_large", f"content: scripts are limited to {MAX_SCRIPT} bytes", 413, field="content",
        )
    if "\x00" in content:
        raise AikoreError("invalid_field", "content: must not contain NUL bytes", 400, field="content")
    try:
        content.encode("utf-8")
    except UnicodeEncodeError:
        raise AikoreError("invalid_field", "content: must be valid Unicode text", 400, field="content") from None
    request.app[keys.WORKSPACE].write_script(instance.name, content)
    # Header edits (proxy mode, health path) change how the instance is routed: tell listeners.
    publish_instance(request.app, instance)
    return json_response({"id": instance.id, "name": instance.name, "content": content, "backup": "launch.sh.bak"})


def setup(app: web.Application) -> None:
    app[MUTATION_LOCK] = asyncio.Lock()
    r = app.router
    r.add_get("/api/instances", list_instances)
    r.add_post("/api/instances", create_instance)
    r.add_get("/api/instances/{id}", get_instance)
    r.add_patch("/api/instances/{id}", patch_instance)
    r.add_delete("/api/instances/{id}", delete_instance)
    r.add_get("/api/instances/{id}/script", get_script)
    r.add_put("/api/instances/{id}/script", put_script)


_ERROR = {"$ref": "#/components/schemas/Error"}
_INSTANCE = {"$ref": "#/components/schemas/Instance"}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}


def _resp(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out["content"] = {"application/json": {"schema": schema}}
    return out


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "Invalid input", 404: "Unknown instance", 409: "Conflict", 413: "Body too large"}
    return {str(c): _resp(text[c], _ERROR) for c in codes}


_DESKTOP_PROPERTIES: dict[str, Any] = {
    "desktop_resolution": {
        "type": "string",
        "pattern": "^[0-9]{3,5}x[0-9]{3,5}$",
        "description": "Persistent mode: the desktop screen, WIDTHxHEIGHT (even sides); used from the next start",
    },
    "desktop_fps": {
        "type": "integer",
        "minimum": 1,
        "maximum": 120,
        "description": "Persistent mode: the desktop stream's frame-rate cap; takes effect at the next start",
    },
}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "Instance": {
        "type": "object",
        "required": ["id", "name", "blueprint", "gpu_ids", "autostart", "persistent_mode", "status", "url"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"},
            "blueprint": {"type": "string"},
            "gpu_ids": {"type": "string", "description": 'Comma-separated GPU indexes, e.g. "0,1"; empty for none'},
            "autostart": {"type": "boolean"},
            "persistent_mode": {"type": "boolean"},
            "status": {"type": "string", "enum": ["stopped", "starting", "running", "stopping", "error"]},
            "pid": {"type": ["integer", "null"]},
            "port": {"type": ["integer", "null"], "description": "Internal port the app listens on (WEBUI_PORT)"},
            "public_port": {"type": ["integer", "null"]},
            "persistent_port": {"type": ["integer", "null"]},
            "url": {"type": ["string", "null"], "description": "Where a user opens the instance"},
            "proxy_mode": {"type": "string", "enum": ["strip-prefix", "keep-prefix", "port-only"]},
            "exit_code": {"type": ["integer", "null"]},
            "restart_policy": {"type": "string", "enum": ["never", "on-failure"]},
            "status_message": {"type": ["string", "null"]},
            "desktop_url": {
                "type": ["string", "null"],
                "description": "Persistent mode: the instance's desktop (Selkies client) on this host",
            },
            **_DESKTOP_PROPERTIES,
            "created_at": {"type": "string"},
            "updated_at": {"type": "string"},
            # Added by aikore/api/system.py's hook; null when the instance has no live process.
            "usage": {"anyOf": [{"$ref": "#/components/schemas/InstanceUsage"}, {"type": "null"}]},
            # Added by aikore/routing.py's hook: the proxy route's counters (kept across restarts).
            "proxy": {
                "type": "object",
                "required": ["requests", "bytes_in", "bytes_out", "open_websockets", "last_activity"],
                "properties": {
                    "requests": {"type": "integer", "description": "HTTP requests and websocket handshakes"},
                    "bytes_in": {"type": "integer", "description": "Body and frame bytes from browsers"},
                    "bytes_out": {"type": "integer", "description": "Body and frame bytes to browsers"},
                    "open_websockets": {"type": "integer"},
                    "last_activity": {"type": ["number", "null"], "description": "Unix time of the last traffic"},
                },
            },
        },
    },
    "InstanceCreate": {
        "type": "object",
        "required": ["name", "blueprint"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"},
            "blueprint": {"type": "string"},
            "gpu_ids": {"type": ["string", "null"], "pattern": "^\\s*(\\d{1,3}\\s*(,\\s*\\d{1,3}\\s*)*)?$"},
            "autostart": {"type": "boolean"},
            "persistent_mode": {"type": "boolean"},
            "public_port": {"type": ["integer", "null"]},
            "restart_policy": {"type": "string", "enum": ["never", "on-failure"]},
            **_DESKTOP_PROPERTIES,
        },
    },
    "InstancePatch": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"},
            "gpu_ids": {"type": ["string", "null"]},
            "autostart": {"type": "boolean"},
            "persistent_mode": {"type": "boolean"},
            "public_port": {"type": ["integer", "null"]},
            "restart_policy": {"type": "string", "enum": ["never", "on-failure"]},
            **_DESKTOP_PROPERTIES,
        },
    },
    "Script": {
        "type": "object",
        "required": ["content"],
        "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "content": {"type": "string"}},
    },
}

OPENAPI_PATHS: dict[str, Any] = {
    "/api/instances": {
        "get": {
            "summary": "List instances",
            "responses": {"200": _resp("All instances", {"type": "array", "items": _INSTANCE})},
        },
        "post": {
            "summary": "Create an instance from a blueprint (copies it to instances/<name>/launch.sh)",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/InstanceCreate"}}},
            },
            "responses": {"201": _resp("Created", _INSTANCE), **_errors(400, 409, 413)},
        },
    },
    "/api/instances/{id}": {
        "parameters": [_ID],
        "get": {"summary": "One instance", "responses": {"200": _resp("The instance", _INSTANCE), **_errors(404)}},
        "patch": {
            "summary": "Change settings; only autostart, restart_policy and desktop_* while it runs",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/InstancePatch"}}},
            },
            "responses": {"200": _resp("Updated", _INSTANCE), **_errors(400, 404, 409, 413)},
        },
        "delete": {
            "summary": "Delete (stops it first; its folder is moved to <data>/trash/)",
            "responses": {
                "200": _resp(
                    "Deleted",
                    {
                        "type": "object",
                        "properties": {
                            "deleted": {"type": "integer"},
                            "name": {"type": "string"},
                            "folder_moved_to": {"type": ["string", "null"]},
                        },
                    },
                ),
                **_errors(404, 409),
            },
        },
    },
    "/api/instances/{id}/script": {
        "parameters": [_ID],
        "get": {
            "summary": "The instance's launch.sh",
            "responses": {"200": _resp("Script", {"$ref": "#/components/schemas/Script"}), **_errors(404)},
        },
        "put": {
            "summary": "Replace launch.sh, keeping the previous version as launch.sh.bak",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["content"],
                            "additionalProperties": False,
                            "properties": {"content": {"type": "string"}},
                        }
                    }
                },
            },
            "responses": {"200": _resp("Saved", {"$ref": "#/components/schemas/Script"}), **_errors(400, 404, 413)},
        },
    },
}
