"""``/desktop/<name>/``: the Selkies client of each persistent instance, through the proxy package.

A route table of its own (the names are the instances', the ports their Selkies servers') is kept
in sync from instance events. A desktop route stays ``starting`` until its Selkies server answers,
so a browser that comes early gets the proxy's self-refreshing page instead of a 502; Selkies'
client uses relative URLs (``api/websockets``), so the prefix is stripped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

import proxy
from aikore import keys
from aikore.desktop.companion import PREFIX, Desktops, desktop_url
from aikore.events import Event
from aikore.store.instance import Instance
from aikore.supervisor.states import RUNNING, STARTING

_PROBE_INTERVAL = 0.5
_PROBE_TIMEOUT = aiohttp.ClientTimeout(total=2.0)


class DesktopRoutes:
    """The desktops' route table and the probes that mark a route running once Selkies answers."""

    def __init__(self) -> None:
        self.table = proxy.RouteTable()
        self.session: aiohttp.ClientSession | None = None
        self._probes: dict[str, asyncio.Task[None]] = {}

    def on_event(self, event: Event) -> None:
        if event.kind == "instance":
            self.sync(event.data)
        elif event.kind == "instance_deleted":
            self.forget(str(event.data.get("name")))

    def sync(self, data: dict[str, Any]) -> None:
        """Update one instance's desktop route from its JSON (status, persistent_port)."""
        name, port, status = data.get("name"), data.get("persistent_port"), str(data.get("status"))
        if not isinstance(name, str):
            return
        if not data.get("persistent_mode"):
            self.forget(name)
            return
        route = self.table.get(name)
        public_port = data.get("public_port") if isinstance(data.get("public_port"), int) else None
        if status not in (STARTING, RUNNING) or not isinstance(port, int):
            self._cancel_probe(name)
            self.table.set(name, port=port if isinstance(port, int) else None, state=status, public_port=public_port)
            return
        if route is not None and route.port == port and route.state == RUNNING:
            route.public_port = public_port
            return
        self.table.set(name, port=port, state=STARTING, public_port=public_port)
        if name not in self._probes and self.session is not None:
            self._probes[name] = asyncio.get_running_loop().create_task(self._probe(name, port))

    def forget(self, name: str) -> None:
        self._cancel_probe(name)
        self.table.remove(name)

    async def close(self) -> None:
        for name in list(self._probes):
            self._cancel_probe(name)

    async def _probe(self, name: str, port: int) -> None:
        assert self.session is not None
        try:
            while True:
                route = self.table.get(name)
                if route is None or route.port != port or route.state != STARTING:
                    return
                if await self._answers(port):
                    # STARTING -> RUNNING for the route only: the instance's own state is the supervisor's.
                    self.table.set(name, port=port, state=RUNNING)
                    return
                await asyncio.sleep(_PROBE_INTERVAL)
        finally:
            if self._probes.get(name) is asyncio.current_task():
                del self._probes[name]

    async def _answers(self, port: int) -> bool:
        assert self.session is not None
        try:
            async with self.session.get(f"http://127.0.0.1:{port}/", timeout=_PROBE_TIMEOUT) as response:
                return response.status < 500
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False

    def _cancel_probe(self, name: str) -> None:
        task = self._probes.pop(name, None)
        if task is not None:
            task.cancel()


def json_hook(app: web.Application, instance: Instance, data: dict[str, Any]) -> None:
    """``desktop_url`` (null unless persistent mode is on) and the Selkies port while it runs."""
    data["desktop_url"] = desktop_url(instance)
    data["persistent_port"] = app[keys.DESKTOPS].live_port(instance)


def setup_desktop(app: web.Application) -> None:
    """Mount /desktop/<name>/, keep its routes in sync with instance events, add ``desktop_url``."""
    routes = app[keys.DESKTOP_ROUTES] = DesktopRoutes()
    app[keys.DESKTOPS] = Desktops(app)
    app[keys.INSTANCE_JSON_HOOKS].append(json_hook)
    app[keys.EVENTS].listen(routes.on_event)

    async def handle(request: web.Request) -> web.StreamResponse:
        return await request.app[keys.DESKTOP_PROXY](request)

    proxy.add_app_routes(app.router, handle, prefix=PREFIX)


async def desktop_ctx(app: web.Application) -> AsyncIterator[None]:
    """After the supervisor's: joins every start as a companion; the proxy handler gets the shared client."""
    supervisor, desktops, routes = app[keys.SUPERVISOR], app[keys.DESKTOPS], app[keys.DESKTOP_ROUTES]
    # Registered before anything awaits, so the supervisor's autostart task already sees it.
    supervisor.add_companion(desktops.companion)
    supervisor.on_stop.append(desktops.stopped)
    routes.session = app[keys.HTTP_CLIENT]
    # The proxy's shared clients (closed at shutdown with theirs), and the auth gate's resolver:
    # X-Forwarded-* is believed only from the operator's trusted proxies.
    app[keys.DESKTOP_PROXY] = proxy.path_handler(
        routes.table, routes.session, prefix=PREFIX, peer=app[keys.AUTH].forwarded.peer, pool=app[keys.UPSTREAM_POOL]
    )
    for instance in await app[keys.STORE].list_instances():
        data = instance.to_json()
        json_hook(app, instance, data)
        routes.sync(data)
    yield
    await routes.close()


def mount_public_desktop(app: web.Application, public: web.Application) -> None:
    """On an instance's public port, ``/desktop/<name>/`` is that instance's desktop (and no other's)."""
    routes = app[keys.DESKTOP_ROUTES]

    async def handle(request: web.Request) -> web.StreamResponse:
        route = routes.table.get(request.match_info["name"])
        sockname = request.transport.get_extra_info("sockname") if request.transport is not None else None
        here = sockname[1] if isinstance(sockname, tuple) and len(sockname) >= 2 else None
        if route is None or route.public_port is None or route.public_port != here:
            raise web.HTTPNotFound(text="404 Not Found: no desktop of this instance here")
        return await app[keys.DESKTOP_PROXY](request)

    proxy.add_app_routes(public.router, handle, prefix=PREFIX)
