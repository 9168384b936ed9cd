"""``/desktop/<name>/``: the Selkies client of each persistent instance, through the proxy package.

A route table of its own (the names are the instances', the ports their Selkies servers') derived
from the supervisor's instance events. Selkies answering is part of the instance's readiness, so
the route simply follows the instance's state: while it is ``starting``, a browser gets the proxy's
self-refreshing page instead of a 502. Selkies' client uses relative URLs (``api/websockets``), so
the prefix is stripped.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

import proxy
from aikore.desktop.companion import PREFIX, live_port
from aikore.store.instance import Instance
from aikore.supervisor.events import InstanceChanged, InstanceDeleted, InstanceRenamed


class DesktopRoutes:
    """The desktops' route table, following instance events."""

    def __init__(self) -> None:
        self.table = proxy.RouteTable()

    def on_event(self, event: object) -> None:
        if isinstance(event, InstanceRenamed):
            self.table.remove(event.old_name)
        if isinstance(event, InstanceChanged | InstanceRenamed):
            self.sync(event.instance)
        elif isinstance(event, InstanceDeleted):
            self.table.remove(event.instance.name)

    def sync(self, instance: Instance) -> None:
        """Update one instance's desktop route from its state and Selkies port."""
        if not instance.persistent_mode:
            self.table.remove(instance.name)
            return
        self.table.set(
            instance.name, port=live_port(instance), state=instance.status, public_port=instance.public_port
        )


def public_port_mount(routes: DesktopRoutes, handler: proxy.Handler) -> Callable[[web.Application], None]:
    """On an instance's public port, ``/desktop/<name>/`` is that instance's desktop (and no other's)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        route = routes.table.get(request.match_info["name"])
        sockname = request.transport.get_extra_info("sockname") if request.transport is not None else None
        here = sockname[1] if isinstance(sockname, tuple) and len(sockname) >= 2 else None
        if route is None or route.public_port is None or route.public_port != here:
            raise web.HTTPNotFound(text="404 Not Found: no desktop of this instance here")
        return await handler(request)

    def mount(public: web.Application) -> None:
        proxy.add_app_routes(public.router, handle, prefix=PREFIX)

    return mount



