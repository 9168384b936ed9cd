"""Satellites: ``GET|POST /api/instances/{id}/satellites``.

A satellite is an instance that runs its parent's app and environment with its own name, port,
GPUs, output folder and launch arguments (the supervisor and the blueprint library's
``satellite.sh`` say how). Its settings are those of a create, less the blueprint: it runs the
parent's script.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from aikore.api.common import json_response, path_id, read_json_object
from aikore.api.instances import answer, instance_json
from aikore.config import SETTINGS
from aikore.errors import AikoreError
from aikore.store.instance import Rules, input_schema, validate_create
from aikore.supervisor import SUPERVISOR


async def create_satellite(request: web.Request) -> web.Response:
    supervisor = request.app[SUPERVISOR]
    parent = supervisor.instance(path_id(request))
    data = await read_json_object(request)
    if "blueprint" in data:
        raise AikoreError("invalid_field", "blueprint: a satellite runs its parent's script; leave it out", 400,
                          field="blueprint")
    fields = validate_create({**data, "blueprint": parent.blueprint}, Rules(request.app[SETTINGS].public_ports))
    return answer(request, await supervisor.create_satellite(parent.id, fields), status=201)


async def list_satellites(request: web.Request) -> web.Response:
    supervisor = request.app[SUPERVISOR]
    parent = supervisor.instance(path_id(request))
    return json_response(
        [instance_json(request.app, i, supervisor.runtime(i), request) for i in supervisor.satellites(parent.id)]
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/api/instances/{id}/satellites", list_satellites)
    app.router.add_post("/api/instances/{id}/satellites", create_satellite)


def _satellite_input() -> dict[str, Any]:
    schema = input_schema(patch=False)
    schema["properties"] = {k: s for k, s in schema["properties"].items() if k != "blueprint"}
    schema["required"] = [k for k in schema.get("required", []) if k != "blueprint"]
    return schema


_ERROR = {"$ref": "#/components/schemas/Error"}
_INSTANCE = {"$ref": "#/components/schemas/Instance"}


def _resp(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


OPENAPI_SCHEMAS: dict[str, Any] = {"SatelliteCreate": _satellite_input()}

OPENAPI_PATHS: dict[str, Any] = {
    "/api/instances/{id}/satellites": {
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}],
        "get": {
            "summary": "The satellites of an instance",
            "responses": {"200": _resp("Satellites", {"type": "array", "items": _INSTANCE}),
                          "404": _resp("Unknown instance", _ERROR)},
        },
        "post": {
            "summary": "Create a satellite: its own name, port, GPUs, output folder and launch arguments, running "
            "this instance's app and environment (installs nothing). The parent cannot be deleted or rebuilt "
            "while it has satellites",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SatelliteCreate"}}},
            },
            "responses": {
                "201": _resp("Created", _INSTANCE),
                "400": _resp("Invalid input", _ERROR),
                "404": _resp("Unknown instance", _ERROR),
                "409": _resp("Name or public port taken; the parent is itself a satellite", _ERROR),
                "413": _resp("Body too large", _ERROR),
            },
        },
    },
}
