"""``GET /api/blueprints``: the scripts an instance can be created from."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from aikore.api.common import json_response
from aikore.store import BLUEPRINTS


async def list_blueprints(request: web.Request) -> web.Response:
    catalog = request.app[BLUEPRINTS].discover()
    return json_response([bp.to_json() for bp in catalog.values()])


def setup(app: web.Application) -> None:
    app.router.add_get("/api/blueprints", list_blueprints)


OPENAPI_SCHEMAS: dict[str, Any] = {
    "Blueprint": {
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
        },
    }
}

OPENAPI_PATHS: dict[str, Any] = {
    "/api/blueprints": {
        "get": {
            "summary": "Built-in and custom blueprints with their metadata header",
            "responses": {
                "200": {
                    "description": "Blueprints",
                    "content": {
                        "application/json": {
                            "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Blueprint"}}
                        }
                    },
                }
            },
        }
    }
}
