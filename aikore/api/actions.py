"""Instance actions: ``POST /api/instances/{id}/start|stop|restart|rebuild``.

Each action answers at once with the instance in its new state (``starting`` or ``stopping``);
the rest is followed through ``GET /api/events`` or the instance itself.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from aikore.api.common import path_id
from aikore.api.instances import answer
from aikore.supervisor import SUPERVISOR


async def start(request: web.Request) -> web.Response:
    return answer(request, await request.app[SUPERVISOR].start(path_id(request)))


async def stop(request: web.Request) -> web.Response:
    return answer(request, await request.app[SUPERVISOR].stop(path_id(request)))


async def restart(request: web.Request) -> web.Response:
    return answer(request, await request.app[SUPERVISOR].restart(path_id(request)))


async def rebuild(request: web.Request) -> web.Response:
    return answer(request, await request.app[SUPERVISOR].restart(path_id(request), rebuild=True))


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/instances/{id}/start", start)
    r.add_post("/api/instances/{id}/stop", stop)
    r.add_post("/api/instances/{id}/restart", restart)
    r.add_post("/api/instances/{id}/rebuild", rebuild)


def _action(summary: str, codes: tuple[int, ...] = (404, 409)) -> dict[str, Any]:
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    text = {404: "Unknown instance", 409: "Already active (starting, running or stopping)"}
    return {
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}],
        "post": {
            "summary": summary,
            "responses": {
                "200": {
                    "description": "The instance in its new state",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Instance"}}},
                },
                **{str(c): {"description": text[c], "content": error} for c in codes},
            },
        },
    }


OPENAPI_SCHEMAS: dict[str, Any] = {}
OPENAPI_PATHS: dict[str, Any] = {
    "/api/instances/{id}/start": _action("Start: answers in `starting`; `running` once its health path answers"),
    "/api/instances/{id}/stop": _action(
        "Stop: SIGTERM to its process group, SIGKILL after the stop timeout; answers in `stopping`", (404,)
    ),
    "/api/instances/{id}/restart": _action("Stop if active, then start"),
    "/api/instances/{id}/rebuild": _action(
        "Stop if active, then start once with AIKORE_REBUILD_ENV=1 (the environment is recreated)"
    ),
}
