"""Blueprints: ``GET|POST /api/blueprints`` and ``GET|PUT|DELETE /api/blueprints/{id}``.

Built-ins are read-only (403); custom blueprints are files in the custom blueprints folder that
the dashboard saves from an instance's script, imports from a ``.sh`` file, edits and deletes
(``aikore.store.blueprints.CustomBlueprints``). The header fields given (name, category,
description) are written into the script's metadata block, so the file alone says what it is.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from aikore.api.common import json_response, read_json_object, reject_unknown
from aikore.api.instances import script_content
from aikore.errors import invalid, not_found
from aikore.store import BLUEPRINTS, CUSTOM_BLUEPRINTS
from aikore.store.blueprints import HEADER_FIELDS, Blueprint, check_blueprint_id, check_header_value, set_header
from aikore.store.variables import VARIABLE_NAME
from aikore.supervisor import SUPERVISOR


async def list_blueprints(request: web.Request) -> web.Response:
    catalog = request.app[BLUEPRINTS].discover()
    return json_response([bp.to_json() for bp in catalog.values()])


def _with_content(bp: Blueprint) -> dict[str, Any]:
    return {**bp.to_json(), "content": bp.path.read_text(encoding="utf-8", errors="replace")}


async def get_blueprint(request: web.Request) -> web.Response:
    blueprint_id = request.match_info["bid"]
    bp = request.app[BLUEPRINTS].get(blueprint_id)
    if bp is None:
        raise not_found("blueprint", blueprint_id)
    return json_response(_with_content(bp))


def _header(data: dict[str, Any]) -> dict[str, str]:
    return {key: check_header_value(key, data[key]) for key in HEADER_FIELDS if key in data}


async def create_blueprint(request: web.Request) -> web.Response:
    """From ``content`` (an imported file) or ``instance_id`` (save an instance's script as a blueprint)."""
    data = await read_json_object(request)
    reject_unknown(data, {"id", "content", "instance_id", *HEADER_FIELDS})
    if "id" not in data:
        raise invalid("id", "a custom blueprint needs an id (its file name without .sh)")
    blueprint_id = check_blueprint_id(data["id"])
    if ("content" in data) == ("instance_id" in data):
        raise invalid("content", "give either content (the script) or instance_id (whose script to save)")
    if "content" in data:
        content = script_content(data["content"])
    else:
        instance_id = data["instance_id"]
        if not isinstance(instance_id, int) or isinstance(instance_id, bool):
            raise invalid("instance_id", "must be an instance id (an integer)")
        content = request.app[SUPERVISOR].read_script(instance_id)
    header = _header(data)
    header.setdefault("name", blueprint_id)
    bp = request.app[CUSTOM_BLUEPRINTS].create(blueprint_id, set_header(content, header))
    return json_response(_with_content(bp), status=201)


async def put_blueprint(request: web.Request) -> web.Response:
    blueprint_id = request.match_info["bid"]
    custom = request.app[CUSTOM_BLUEPRINTS]
    path = custom.editable(blueprint_id)  # 403/404 before reading the body
    data = await read_json_object(request)
    reject_unknown(data, {"content", *HEADER_FIELDS})
    content = script_content(data["content"]) if "content" in data else path.read_text(encoding="utf-8")
    header = _header(data)
    bp = custom.replace(blueprint_id, set_header(content, header) if header else content)
    return json_response(_with_content(bp))


async def delete_blueprint(request: web.Request) -> web.Response:
    blueprint_id = request.match_info["bid"]
    moved = request.app[CUSTOM_BLUEPRINTS].remove(blueprint_id)
    return json_response({"deleted": blueprint_id, "moved_to": str(moved)})


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/blueprints", list_blueprints)
    r.add_post("/api/blueprints", create_blueprint)
    r.add_get("/api/blueprints/{bid}", get_blueprint)
    r.add_put("/api/blueprints/{bid}", put_blueprint)
    r.add_delete("/api/blueprints/{bid}", delete_blueprint)


_ERROR = {"$ref": "#/components/schemas/Error"}
_DETAIL = {"$ref": "#/components/schemas/BlueprintDetail"}
_BID = {"name": "bid", "in": "path", "required": True, "schema": {"type": "string"}}
_HEADER_PROPS = {
    "name": {"type": "string", "maxLength": 80},
    "category": {"type": "string", "maxLength": 60},
    "description": {"type": "string", "maxLength": 1000},
}


def _resp(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(**codes: str) -> dict[str, Any]:
    return {code[1:]: _resp(text, _ERROR) for code, text in codes.items()}


_BLUEPRINT_SCHEMA = {
    "type": "object",
    "required": ["id", "name", "category", "description", "proxy", "health", "source"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "category": {"type": "string"},
        "description": {"type": "string"},
        "proxy": {"type": "string", "enum": ["strip-prefix", "keep-prefix", "port-only"]},
        "health": {"type": "string"},
        "source": {"type": "string", "enum": ["builtin", "custom"]},
        "extra": {"type": "object", "additionalProperties": {"type": "string"}},
        "warnings": {"type": "array", "items": {"type": "string"}},
        "variables": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/BlueprintVariable"},
            "description": "Variables its header declares (# aikore.var:), with the defaults its script sets",
        },
    },
}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "Blueprint": _BLUEPRINT_SCHEMA,
    "BlueprintVariable": {
        "type": "object",
        "required": ["name", "description", "value"],
        "properties": {
            "name": {"type": "string", "pattern": VARIABLE_NAME.pattern},
            "description": {"type": "string"},
            "value": {"type": ["string", "null"],
                      "description": "As the script sets it (NAME=${NAME:-value}); null: it has no such line"},
        },
    },
    "BlueprintDetail": {
        **_BLUEPRINT_SCHEMA,
        "required": [*_BLUEPRINT_SCHEMA["required"], "content"],
        "properties": {**_BLUEPRINT_SCHEMA["properties"], "content": {"type": "string"}},
    },
    "BlueprintCreate": {
        "type": "object",
        "required": ["id"],
        "additionalProperties": False,
        "description": "Exactly one of content (an imported .sh file) and instance_id (save that instance's "
        "launch.sh); name, category and description are written into the script's metadata header",
        "properties": {
            "id": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"},
            "content": {"type": "string"},
            "instance_id": {"type": "integer"},
            **_HEADER_PROPS,
        },
    },
    "BlueprintUpdate": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"content": {"type": "string"}, **_HEADER_PROPS},
    },
}

OPENAPI_PATHS: dict[str, Any] = {
    "/api/blueprints": {
        "get": {
            "summary": "Built-in and custom blueprints with their metadata header",
            "responses": {
                "200": _resp("Blueprints", {"type": "array", "items": {"$ref": "#/components/schemas/Blueprint"}})
            },
        },
        "post": {
            "summary": "Create a custom blueprint from a script (import) or from an instance's launch.sh",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BlueprintCreate"}}},
            },
            "responses": {
                "201": _resp("Created", _DETAIL),
                **_errors(_400="Invalid input", _404="Unknown instance",
                          _409="The id is taken (by a built-in or a custom blueprint)", _413="Script too large"),
            },
        },
    },
    "/api/blueprints/{bid}": {
        "parameters": [_BID],
        "get": {
            "summary": "One blueprint with its script",
            "responses": {"200": _resp("The blueprint", _DETAIL), **_errors(_404="Unknown blueprint")},
        },
        "put": {
            "summary": "Edit a custom blueprint (its script and/or header fields); built-ins are read-only",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BlueprintUpdate"}}},
            },
            "responses": {
                "200": _resp("Saved", _DETAIL),
                **_errors(_400="Invalid input", _403="A built-in blueprint (read-only)", _404="Unknown blueprint",
                          _413="Script too large"),
            },
        },
        "delete": {
            "summary": "Delete a custom blueprint (moved to <data>/trash/blueprints/; instances keep their own "
            "launch.sh); built-ins are read-only",
            "responses": {
                "200": _resp("Deleted", {"type": "object", "properties": {"deleted": {"type": "string"},
                                                                         "moved_to": {"type": "string"}}}),
                **_errors(_403="A built-in blueprint (read-only)", _404="Unknown blueprint"),
            },
        },
    },
}
