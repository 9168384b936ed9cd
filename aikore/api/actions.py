"""Instance actions: ``POST /api/instances/{id}/start|stop|restart|rebuild``, and the supervisor's wiring.

Each action answers at once with the instance in its new state (``starting`` or ``stopping``);
the rest is followed through ``GET /api/events`` or the instance itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from aikore import keys
from aikore.api.common import json_response
from aikore.api.instances import MUTATION_LOCK, instance_json, load_instance, publish_instance
from aikore.errors import not_found
from aikore.supervisor.supervisor import Supervisor


async def supervisor_ctx(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context after the store: re-adopt and autostart on start, stop every instance on exit."""
    supervisor = Supervisor(
        app[keys.SETTINGS], app[keys.STORE], app[keys.WORKSPACE], lambda instance: publish_instance(app, instance)
    )
    app[keys.SUPERVISOR] = supervisor
    app[keys.EVENTS].listen(supervisor.on_event)
    app[keys.BEFORE_DELETE].append(supervisor.stop_before_delete)
    await supervisor.startup()
    yield
    await supervisor.shutdown()


async def _answer(request: web.Request, instance_id: int) -> web.Response:
    instance = await request.app[keys.STORE].get_instance(instance_id)
    if instance is None:  # deleted meanwhile
        raise not_found("instance", instance_id)
    return json_response(instance_json(request.app, instance, request))


async def start(request: web.Request) -> web.Response:
    # Under the mutation lock: a rename or delete cannot slip between reading the name and spawning.
    async with request.app[MUTATION_LOCK]:
        instance = await load_instance(request)
        await request.app[keys.SUPERVISOR].start(instance.id)
    return await _answer(request, instance.id)


async def stop(request: web.Request) -> web.Response:
    instance = await load_instance(request)
    await request.app[keys.SUPERVISOR].stop(instance.id)
    return await _answer(request, instance.id)


async def restart(request: web.Request) -> web.Response:
    async with request.app[MUTATION_LOCK]:
        instance = await load_instance(request)
        await request.app[keys.SUPERVISOR].restart(instance.id)
    return await _answer(request, instance.id)


async def rebuild(request: web.Request) -> web.Response:
    async with request.app[MUTATION_LOCK]:
        instance = await load_instance(request)
        await request.app[keys.SUPERVISOR].restart(instance.id, rebuild=True)
    return await _answer(request, instance.id)


async def _autostart(app: web.Application) -> None:
    await app[keys.SUPERVISOR].begin_autostart()


def setup(app: web.Application) -> None:
    # on_startup handlers run after every cleanup context has started, so parts that hook into the
    # supervisor (persistent-mode companions) are registered before the first autostart.
    app.on_startup.append(_autostart)
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
