"""The supervisor: the registry of instances, their processes, states, ports, logs and the OS seam.

``setup_supervisor(app, settings)`` creates it on the application (parts that join every start,
such as persistent mode's desktop, register with it during setup); its cleanup context re-adopts
what a previous AiKore left running and, on exit, stops every instance.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from aikore.config import Settings
from aikore.events import EVENTS
from aikore.store import BLUEPRINTS, STORE, WORKSPACE
from aikore.supervisor.supervisor import Supervisor

SUPERVISOR = web.AppKey("supervisor", Supervisor)


def setup_supervisor(app: web.Application, settings: Settings) -> None:
    app[SUPERVISOR] = Supervisor(settings, app[STORE], app[WORKSPACE], app[EVENTS], blueprints=app[BLUEPRINTS])
    app.cleanup_ctx.append(_supervisor_ctx)
    # on_startup runs after every cleanup context has started: every listener is in place then.
    app.on_startup.append(_autostart)


async def _supervisor_ctx(app: web.Application) -> AsyncIterator[None]:
    await app[SUPERVISOR].startup()
    yield
    await app[SUPERVISOR].shutdown()


async def _autostart(app: web.Application) -> None:
    await app[SUPERVISOR].begin_autostart()
