"""``GET /api/openapi.json``: the OpenAPI 3.1 document, merged from every API module's fragment."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from aiohttp import web

from aikore import __version__
from aikore.api.common import json_response

DOCUMENT = web.AppKey("openapi_document", dict)

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "field"],
            "properties": {
                "code": {"type": "string", "description": "Stable, machine-readable"},
                "message": {"type": "string", "description": "For people; names the field at fault first"},
                "field": {"type": ["string", "null"], "description": "The input field at fault, if any"},
            },
        }
    },
}


_EXPECTATION_FAILED = {
    "description": "The request's Expect header asks for something other than 100-continue",
    "content": {"text/plain": {"schema": {"type": "string"}}},
}


_MALFORMED = {
    "description": "A malformed request (a bad Content-Length, header or request line), refused by the HTTP "
    "server before any view",
    "content": {"text/plain": {"schema": {"type": "string"}}},
}


def build_document(modules: Iterable[ModuleType]) -> dict[str, Any]:
    """The whole document from each API module's ``OPENAPI_PATHS`` and ``OPENAPI_SCHEMAS``."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    for module in [*modules, sys.modules[__name__]]:
        paths.update(getattr(module, "OPENAPI_PATHS", {}))
        schemas.update(getattr(module, "OPENAPI_SCHEMAS", {}))
    for operations in paths.values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            # aiohttp's HTTP parser answers a malformed request itself (in text/plain), whatever the
            # operation: beside an operation's own JSON 400, or as its only 400.
            responses = operation["responses"]
            if "400" in responses:
                own = responses["400"]
                responses["400"] = {**own, "content": {**own.get("content", {}), **_MALFORMED["content"]}}
            else:
                responses["400"] = _MALFORMED
            if "requestBody" in operation:
                # aiohttp's server answers an Expect other than 100-continue itself, before any view.
                operation["responses"].setdefault("417", _EXPECTATION_FAILED)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "AiKore API",
            "version": __version__,
            "description": "Manage AI WebUI instances, their processes, logs and the machine's resources. "
            'Errors are {"error": {"code", "message", "field"}} with a 4xx status.',
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}, {"sessionCookie": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "The AiKore token"},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "aikore_session"},
            },
        },
    }


async def get_openapi(request: web.Request) -> web.Response:
    return json_response(request.app[DOCUMENT])


def setup(app: web.Application, modules: Iterable[ModuleType]) -> None:
    """Serve the document of ``modules`` (and of this one), built once and kept in memory."""
    app[DOCUMENT] = build_document(modules)
    app.router.add_get("/api/openapi.json", get_openapi)


OPENAPI_SCHEMAS: dict[str, Any] = {}
OPENAPI_PATHS: dict[str, Any] = {
    "/api/openapi.json": {
        "get": {
            "summary": "This document",
            "responses": {
                "200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}
            },
        }
    }
}
