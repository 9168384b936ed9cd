"""Persistent mode: each persistent instance's desktop session, streamed with Selkies.

``setup_desktop(app)`` joins every start of a persistent instance as a supervisor companion
(``companion.Desktops``), keeps the ``/desktop/<name>/`` route table in step with instance events
(``routes.DesktopRoutes``) and serves it on the main port and on each instance's public port.
The session process itself is ``python -m aikore.desktop.session``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

import proxy
from aikore.desktop.companion import PREFIX, Desktops
from aikore.desktop.routes import DesktopRoutes, public_port_mount
from aikore.events import EVENTS
from aikore.routing import HTTP_CLIENT, PUBLIC_PORT_MOUNTS, UPSTREAM_POOL, peer_resolver, scrub
from aikore.supervisor import SUPERVISOR

DESKTOPS = web.AppKey("desktops", Desktops)
DESKTOP_ROUTES = web.AppKey("desktop_routes", DesktopRoutes)
DESKTOP_PROXY = web.AppKey("desktop_proxy_handler", proxy.Handler)


def setup_desktop(app: web.Application) -> None:
    """Needs the supervisor and the routing set up first (it joins both)."""
    supervisor = app[SUPERVISOR]
    desktops = app[DESKTOPS] = Desktops(supervisor)
    routes = app[DESKTOP_ROUTES] = DesktopRoutes()
    supervisor.add_companion(desktops.companion)
    supervisor.on_stop.append(desktops.stopped)
    app[EVENTS].listen(routes.on_event)

    async def handle(request: web.Request) -> web.StreamResponse:
        # The main application's handler, also on public ports (their requests have another app).
        scrub(request)
        return await app[DESKTOP_PROXY](request)

    proxy.add_app_routes(app.router, handle, prefix=PREFIX)
    app[PUBLIC_PORT_MOUNTS].append(public_port_mount(routes, handle))
    app.cleanup_ctx.append(_desktop_proxy_ctx)


async def _desktop_proxy_ctx(app: web.Application) -> AsyncIterator[None]:
    """After the routing's: the desktop handler on the proxy's shared clients (closed with theirs)."""
    app[DESKTOP_PROXY] = proxy.path_handler(
        app[DESKTOP_ROUTES].table, app[HTTP_CLIENT], prefix=PREFIX, peer=peer_resolver(app), pool=app[UPSTREAM_POOL]
    )
    yield
