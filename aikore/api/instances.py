"""Instance CRUD and launch-script views: ``/api/instances`` and ``/api/instances/{id}[/script]``.

Views only: the supervisor owns every change and publishes it; this module turns instances into
JSON (``instance_json``, the one place that does) and checks request bodies against the field
declarations of ``aikore.store.instance``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from aikore.api.common import json_response, path_id, read_json_object, reject_unknown
from aikore.config import SETTINGS
from aikore.desktop.companion import desktop_url, live_port
from aikore.errors import AikoreError
from aikore.monitor import MONITOR
from aikore.monitor.gpu import describe_gpus, missing_gpus
from aikore.routing import route_metrics
from aikore.store.instance import Instance, Rules, input_schema, instance_schema, validate_create, validate_patch
from aikore.store.variables import VALUE, VARIABLE_NAME, with_values
from aikore.supervisor import SUPERVISOR
from aikore.supervisor.events import Runtime
from aikore.supervisor.supervisor import MAX_SCRIPT, Supervisor


def instance_json(
    app: web.Application, instance: Instance, runtime: Runtime, request: web.Request | None = None
) -> dict[str, Any]:
    """Stored fields plus where to open it, its proxy counters, its usage and its desktop.

    ``request`` (when there is one) gives the host the browser used, for public-port URLs; events
    rendered outside a request fall back to the configured host.
    """
    data = instance.to_json()
    data["proxy_mode"] = runtime.proxy_mode
    data["url"] = _open_url(app, instance, runtime.proxy_mode, request)
    data["proxy"] = route_metrics(app, instance.name)
    data["usage"] = _usage(app, instance)
    data["desktop_url"] = desktop_url(instance)
    data["persistent_port"] = live_port(instance)
    data["progress"] = runtime.progress.to_json() if runtime.progress is not None else None
    data["gpu_warning"] = _gpu_warning(app, instance.gpu_ids)
    data["variables"] = [v.to_json() for v in runtime.variables]
    return data


def _gpu_warning(app: web.Application, gpu_ids: str) -> str | None:
    """Why the instance's GPU IDs may not be what it gets: unchecked (no NVML), or no longer there."""
    monitor = app.get(MONITOR)
    if not gpu_ids or monitor is None:
        return None
    detected = monitor.gpus.detected()
    if detected is None:
        return f"GPU IDs not checked: {monitor.gpus.reason}; used as given"
    missing = missing_gpus(gpu_ids, detected)
    if missing:
        return f"{_gpus_named(missing)} not on this machine: {describe_gpus(detected)}"
    return None


def _gpus_named(indexes: list[int]) -> str:
    return f"GPU {indexes[0]} is" if len(indexes) == 1 else f"GPUs {', '.join(map(str, indexes))} are"


def _check_gpus(request: web.Request, fields: dict[str, Any]) -> None:
    """GPU IDs must name GPUs this machine has, where NVML answers; without it they are taken as given
    (and the instance says so, in ``gpu_warning``)."""
    monitor = request.app.get(MONITOR)
    detected = monitor.gpus.detected() if monitor is not None else None
    if detected is None or not fields.get("gpu_ids"):
        return
    missing = missing_gpus(fields["gpu_ids"], detected)
    if missing:
        raise AikoreError(
            "invalid_field", f"gpu_ids: {_gpus_named(missing)} not on this machine: {describe_gpus(detected)}", 400,
            field="gpu_ids",
        )


def _usage(app: web.Application, instance: Instance) -> dict[str, Any] | None:
    monitor = app.get(MONITOR)
    usage = monitor.usage(instance.id) if monitor is not None else None
    # A sample from before a restart describes the old process, not this one.
    return usage.to_json() if usage is not None and usage.pid == instance.pid else None


def _open_url(app: web.Application, instance: Instance, mode: str, request: web.Request | None) -> str | None:
    if mode != "port-only":
        return f"/app/{instance.name}/"
    if instance.public_port is None:
        return None
    # Same host the browser used for the dashboard, on the instance's own port.
    if request is not None:
        scheme, host = request.scheme, request.url.host or "127.0.0.1"
    else:
        scheme, host = "http", app[SETTINGS].host
        host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{instance.public_port}/"


def _supervisor(request: web.Request) -> Supervisor:
    return request.app[SUPERVISOR]


def _rules(request: web.Request) -> Rules:
    slurm = _supervisor(request).slurm
    return Rules(public_ports=request.app[SETTINGS].public_ports,
                 partitions=slurm.known_partitions() if slurm is not None else None)


def answer(request: web.Request, instance: Instance, status: int = 200) -> web.Response:
    """One instance as the API returns it."""
    runtime = _supervisor(request).runtime(instance)
    return json_response(instance_json(request.app, instance, runtime, request), status=status)


async def list_instances(request: web.Request) -> web.Response:
    supervisor = _supervisor(request)
    return json_response(
        [instance_json(request.app, i, supervisor.runtime(i), request) for i in supervisor.instances()]
    )


async def get_instance(request: web.Request) -> web.Response:
    return answer(request, _supervisor(request).instance(path_id(request)))


async def create_instance(request: web.Request) -> web.Response:
    fields = validate_create(await read_json_object(request), _rules(request))
    _check_gpus(request, fields)
    return answer(request, await _supervisor(request).create(fields), status=201)


async def patch_instance(request: web.Request) -> web.Response:
    """Settings (the row's fields) and blueprint variables (lines of launch.sh), all checked before any is changed."""
    supervisor, instance_id = _supervisor(request), path_id(request)
    data = dict(await read_json_object(request))
    variables = data.pop("variables", None)
    changes = validate_patch(data, _rules(request))
    _check_gpus(request, changes)
    script = None
    if variables is not None:
        current = supervisor.read_script(instance_id)
        declared = [(v.name, v.description) for v in supervisor.runtime(supervisor.instance(instance_id)).variables]
        script = with_values(current, declared, variables)
        script = script if script != current else None
    instance = await supervisor.update(instance_id, changes) if changes else supervisor.instance(instance_id)
    if script is not None:
        instance = supervisor.write_script(instance_id, script)
    return answer(request, instance)


async def delete_instance(request: web.Request) -> web.Response:
    instance, retired = await _supervisor(request).delete(path_id(request))
    return json_response(
        {"deleted": instance.id, "name": instance.name, "folder_moved_to": str(retired) if retired else None}
    )


async def get_script(request: web.Request) -> web.Response:
    supervisor, instance_id = _supervisor(request), path_id(request)
    instance, content = supervisor.instance(instance_id), supervisor.read_script(instance_id)
    return json_response({"id": instance.id, "name": instance.name, "content": content})


def script_content(content: Any) -> str:
    """A script body as the API takes it (an instance's launch.sh, a custom blueprint), or a 4xx."""
    if not isinstance(content, str):
        raise AikoreError("invalid_field", "content: must be the script text as a string", 400, field="content")
    if len(content.encode("utf-8", errors="surrogatepass")) > MAX_SCRIPT:
        raise AikoreError(
            "payload_too_large", f"content: scripts are limited to {MAX_SCRIPT} bytes", 413, field="content"
        )
    if "\x00" in content:
        raise AikoreError("invalid_field", "content: must not contain NUL bytes", 400, field="content")
    try:
        content.encode("utf-8")
    except UnicodeEncodeError:
        raise AikoreError("invalid_field", "content: must be valid Unicode text", 400, field="content") from None
    return content


async def put_script(request: web.Request) -> web.Response:
    instance_id = path_id(request)
    _supervisor(request).instance(instance_id)  # 404 before reading the body
    data = await read_json_object(request)
    reject_unknown(data, {"content"})
    content = script_content(data.get("content"))
    instance = _supervisor(request).write_script(instance_id, content)
    return json_response({"id": instance.id, "name": instance.name, "content": content, "backup": "launch.sh.bak"})


def setup(app: web.Application) -> None:
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


# What the API adds to the stored fields (instance_json above).
_DERIVED_PROPERTIES: dict[str, Any] = {
    "url": {"type": ["string", "null"], "description": "Where a user opens the instance"},
    "proxy_mode": {"type": "string", "enum": ["strip-prefix", "keep-prefix", "port-only"]},
    "desktop_url": {
        "type": ["string", "null"],
        "description": "Persistent mode: the instance's desktop (Selkies client) on this host",
    },
    # null when the instance has no live process.
    "usage": {"anyOf": [{"$ref": "#/components/schemas/InstanceUsage"}, {"type": "null"}]},
    "progress": {
        "description": (
            "The install phase the instance's script reported last (README, Install progress): while it is "
            "starting, and kept when a start failed in it; null otherwise, or when the script reports none"
        ),
        "anyOf": [
            {
                "type": "object",
                "required": ["phase", "fraction", "installing", "since", "started"],
                "properties": {
                    "phase": {
                        "type": "string",
                        "pattern": "^[a-z][a-z0-9-]{0,39}$",
                        "description": "cloning, creating-env, installing-torch, installing-requirements, "
                        "linking-models, launching, or a blueprint's own",
                    },
                    "fraction": {"type": ["number", "null"], "minimum": 0, "maximum": 1,
                                 "description": "How far the phase is, where the script knows (git clones)"},
                    "installing": {"type": "boolean",
                                   "description": "Before launching: the ready timeout counts from launch"},
                    "since": {"type": "number", "description": "Unix time the phase began"},
                    "started": {"type": "number", "description": "Unix time this start's script began"},
                },
            },
            {"type": "null"},
        ],
    },
    "gpu_warning": {
        "type": ["string", "null"],
        "description": (
            "Why the GPU IDs may not be what the instance gets: not checked (NVML did not answer; they are "
            "used as given) or naming a GPU this machine no longer has; null when they are fine or empty"
        ),
    },
    # The proxy route's counters (kept across restarts).
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
}

_DERIVED_PROPERTIES["variables"] = {
    "type": "array",
    "items": {"$ref": "#/components/schemas/BlueprintVariable"},
    "description": "Blueprint variables its launch.sh declares (# aikore.var:), with their values there",
}
_VARIABLES_PATCH = {
    "type": "object",
    "propertyNames": {"pattern": VARIABLE_NAME.pattern},
    "additionalProperties": {"type": "string", "pattern": VALUE.pattern},
    "description": "New values of declared blueprint variables: each rewrites its line of launch.sh "
    "(launch.sh.bak keeps the previous script); applies at the next start",
}


def _patch_schema() -> dict[str, Any]:
    schema = input_schema(patch=True)
    schema["properties"]["variables"] = _VARIABLES_PATCH
    return schema


OPENAPI_SCHEMAS: dict[str, Any] = {
    # Derived from the one declaration per field in aikore/store/instance.py.
    "Instance": instance_schema(_DERIVED_PROPERTIES, required_extra=("url",)),
    "InstanceCreate": input_schema(patch=False),
    "InstancePatch": _patch_schema(),
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
            "summary": "Change settings; while it runs only autostart and restart_policy (at once) and desktop_*, "
            "launch_args, env and variables (at the next start)",
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
