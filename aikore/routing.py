"""Keeps the proxy's route table and public-port listeners in step with the instances.

The table changes in memory the moment an instance event is published: no reload, no restart.
Listeners open and close on a single worker task so two quick events never race on one port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiohttp import web

import proxy
from aikore import keys
from aikore.desktop.routes import mount_public_desktop
from aikore.events import Event
from aikore.http.auth import public_port_middlewares
from aikore.store.instance import Instance

log = logging.getLogger(__name__)


class Routing:
    """Applies instance events to the route table and asks the listeners to follow."""

    def __init__(self, table: proxy.RouteTable) -> None:
        self.table = table
        self.listeners: proxy.PublicListeners | None = None
        self._dirty = asyncio.Event()

    def apply(self, data: Mapping[str, Any]) -> None:
        """Set one instance's route from its JSON (name, status, port, public_port, proxy_mode)."""
        mode = data.get("proxy_mode") or proxy.STRIP_PREFIX
        if mode not in proxy.MODES:
            log.warning("instance %s has unknown proxy mode %r; using strip-prefix", data["name"], mode)
            mode = proxy.STRIP_PREFIX
        self.table.set(
            data["name"], port=data.get("port"), mode=mode, state=data["status"], public_port=data.get("public_port")
        )
        self._dirty.set()

    def on_event(self, event: Event) -> None:
        """EventBus listener: runs inside publish, so the table is current before anyone reads it."""
        if event.kind == "instance":
            self.apply(event.data)
        elif event.kind == "instance_deleted":
            self.table.remove(event.data["name"])
            self._dirty.set()

    async def follow(self) -> None:
        """Reconcile public listeners whenever the table changed; runs until cancelled."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if self.listeners is not None:
                await self.listeners.sync()


def instance_route_data(app: web.Application, instance: Instance) -> dict[str, Any]:
    """What apply() needs, straight from the stored row and the instance's own launch script."""
    data = instance.to_json()
    data["proxy_mode"] = app[keys.WORKSPACE].metadata(instance.name, instance.blueprint).proxy_mode
    return data


def proxy_metrics_hook(app: web.Application, instance: Instance, data: dict[str, Any]) -> None:
    """Instance JSON hook: the route's counters under "proxy" (zeros and null before any traffic)."""
    route = app[keys.ROUTES].get(instance.name)
    data["proxy"] = route.metrics() if route is not None else proxy.Route(instance.name).metrics()


def _peer(app: web.Application) -> proxy.PeerFn:
    # With trusted proxies configured, the auth gate's resolver (it believes X-Forwarded-* only from
    # them); without, the socket is the truth and the cheaper resolver keeps the hot path short.
    if not app[keys.SETTINGS].trusted_proxies:
        return proxy.direct_peer
    return app[keys.AUTH].forwarded.peer


async def _main_port(request: web.Request) -> web.StreamResponse:
    return await request.app[keys.PROXY](request)


def setup_routing(app: web.Application) -> None:
    """Create the route table, mount /app/<name>/ and add the instance JSON hook."""
    app[keys.ROUTES] = proxy.RouteTable()
    app[keys.ROUTING] = Routing(app[keys.ROUTES])
    app[keys.INSTANCE_JSON_HOOKS].append(proxy_metrics_hook)
    proxy.add_app_routes(app.router, _main_port)


async def http_client_ctx(app: web.Application) -> AsyncIterator[None]:
    """After the store: the shared upstream session, the table loaded, and event following on."""
    session = app[keys.HTTP_CLIENT] = proxy.client_session()
    pool = app[keys.UPSTREAM_POOL] = proxy.UpstreamPool()
    routing = app[keys.ROUTING]
    app[keys.PROXY] = proxy.path_handler(routing.table, session, peer=_peer(app), pool=pool)
    for instance in await app[keys.STORE].list_instances():
        routing.apply(instance_route_data(app, instance))
    # Before the supervisor's context: its re-adoption and autostart events must reach the table.
    app[keys.EVENTS].listen(routing.on_event)
    yield
    await pool.close()
    await session.close()


async def public_listeners_ctx(app: web.Application) -> AsyncIterator[None]:
    """Last: one listener per live instance with a public port, following the table until exit."""
    settings = app[keys.SETTINGS]
    routing = app[keys.ROUTING]
    listeners = proxy.PublicListeners(
        routing.table,
        app[keys.HTTP_CLIENT],
        host=settings.host,
        middlewares=public_port_middlewares(app),
        peer=_peer(app),
        # Persistent instances' desktops are served on their public port too.
        configure=lambda public: mount_public_desktop(app, public),
    )
    routing.listeners = listeners
    await listeners.sync()
    task = asyncio.create_task(routing.follow())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    routing.listeners = None
    await listeners.close_all()
