"""``GET /api/health``: liveness for Docker's HEALTHCHECK and load balancers (no auth)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from aikore import __version__
from aikore.api.common import json_response


async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok", "version": __version__})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/health", health)


OPENAPI_SCHEMAS: dict[str, Any] = {}
OPENAPI_PATHS: dict[str, Any] = {
    "/api/health": {
        "get": {
            "summary": "Liveness; needs no authentication",
            "security": [],
            "responses": {
                "200": {
                    "description": "AiKore is up",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["status", "version"],
                                "properties": {"status": {"const": "ok"}, "version": {"type": "string"}},
                            }
                        }
                    },
                }
            },
        }
    }
}
