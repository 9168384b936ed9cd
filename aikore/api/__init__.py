"""The JSON API: one module per resource, each with ``setup(app)`` and its OpenAPI fragment."""

from __future__ import annotations

from types import ModuleType

from aiohttp import web

from aikore.api import (
    actions,
    auth,
    blueprints,
    cluster,
    copies,
    events,
    files,
    health,
    instances,
    logs,
    models,
    openapi,
    outputs,
    satellites,
    system,
    terminal,
    versions,
)

# Each module registers its routes and contributes OPENAPI_PATHS / OPENAPI_SCHEMAS.
API_MODULES: list[ModuleType] = [
    health, auth, blueprints, instances, actions, logs, events, system, cluster, models, terminal, files,
    outputs, versions, copies, satellites,
]


def setup_api(app: web.Application) -> None:
    for module in API_MODULES:
        module.setup(app)
    openapi.setup(app, API_MODULES)
