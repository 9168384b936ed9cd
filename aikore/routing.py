"""The proxy's route table and public-port listeners, derived from the supervisor's domain events.

The table changes in memory the moment an instance event is published: no reload, no restart.
Listeners open and close on a single worker task so two quick events never race on one port.
Requests being proxied (websockets, downloads, SSE) are ended when AiKore stops, before it waits
for its handlers: an open browser tab never holds up the stopping of the instances.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

import proxy
from aikore.config import SETTINGS
from aikore.events import EVENTS
from aikore.http import AUTH
from aikore.http.gate import STRIP, public_port_middlewares
from aikore.store.instance import Instance
from aikore.supervisor.events import InstanceChanged, InstanceDeleted, InstanceRenamed, Runtime

log = logging.getLogger(__name__)

# The proxy: one upstream session for websocket handshakes, one keep-alive pool for plain HTTP,
# the route table instances' states are mirrored into, what keeps it in sync, the /app/ handler.
HTTP_CLIENT = web.AppKey("http_client", aiohttp.ClientSession)
UPSTREAM_POOL = web.AppKey("upstream_pool", proxy.UpstreamPool)
ROUTES = web.AppKey("routes", proxy.RouteTable)
PROXY = web.AppKey("proxy_handler", proxy.Handler)
# Hooks for what a public port also serves (persistent mode mounts the instance's desktop there).
PUBLIC_PORT_MOUNTS = web.AppKey("public_port_mounts", list)


# How long a stop waits for proxied requests to end once told to (websockets say "going away").
_CLOSE_PROXIED_WITHIN = 1.0


class ProxiedRequests:
    """The requests being proxied right now, on the main port and public ports alike."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[object]] = set()

    async def run(self, forwarding: Awaitable[web.StreamResponse]) -> web.StreamResponse:
        """Await one proxied request's handling, known to ``close`` meanwhile."""
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            return await forwarding
        finally:
            self._tasks.discard(task)

    def __len__(self) -> int:
        return len(self._tasks)

    async def close(self, within: float = _CLOSE_PROXIED_WITHIN) -> None:
        """End every proxied request (a websocket's relay closes both sides with 1001 going away).

        A peer that does not answer the close within ``within`` is cut off: cancelled again.
        """
        pending = set(self._tasks)
        for _ in range(2):
            for task in pending:
                task.cancel()
            if not pending:
                return
            _, pending = await asyncio.wait(pending, timeout=within)


PROXIED = web.AppKey("proxied_requests", ProxiedRequests)


class Routing:
    """Applies instance events to the route table and asks the listeners to follow."""

    def __init__(self, table: proxy.RouteTable) -> None:
        self.table = table
        self.listeners: proxy.PublicListeners | None = None
        self._dirty = asyncio.Event()

    def apply(self, instance: Instance, runtime: Runtime) -> None:
        """Set one instance's route from its state, ports and proxy mode."""
        mode = runtime.proxy_mode
        if mode not in proxy.MODES:
            log.warning("instance %s has unknown proxy mode %r; using strip-prefix", instance.name, mode)
            mode = proxy.STRIP_PREFIX
        # The install phase the instance's script reports, for the "Starting…" page.
        progress = runtime.progress
        phase = None
        if progress is not None and instance.status == "starting":
            fraction = f" ({round(progress.fraction * 100)}%)" if progress.fraction is not None else ""
            phase = f"{'installing: ' if progress.installing else ''}{progress.label}{fraction}"
        self.table.set(
            instance.name, port=instance.port, mode=mode, state=instance.status, public_port=instance.public_port,
            exit_code=instance.exit_code, phase=phase, since=progress.started if progress is not None else None,
            host=instance.node_address if instance.slurm_partition else None,
        )
        self._dirty.set()

    def on_event(self, event: object) -> None:
        """EventBus listener: runs inside publish, so the table is current before anyone reads it."""
        if isinstance(event, InstanceRenamed):
            self.table.remove(event.old_name)
        if isinstance(event, InstanceChanged | InstanceRenamed):
            self.apply(event.instance, event.runtime)
        elif isinstance(event, InstanceDeleted):
            self.table.remove(event.instance.name)
            self._dirty.set()

    async def follow(self) -> None:
        """Reconcile public listeners whenever the table changed; runs until cancelled."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if self.listeners is not None:
                await self.listeners.sync()


ROUTING = web.AppKey("routing", Routing)


def route_metrics(app: web.Application, name: str) -> dict[str, object]:
    """An instance route's counters (zeros and null before any traffic)."""
    route = app[ROUTES].get(name)
    return route.metrics() if route is not None else proxy.Route(name).metrics()


def peer_resolver(app: web.Application) -> proxy.PeerFn:
    # With trusted proxies configured, the auth gate's resolver (it believes X-Forwarded-* only from
    # them); without, the socket is the truth and the cheaper resolver keeps the hot path short.
    if not app[SETTINGS].trusted_proxies:
        return proxy.direct_peer
    return app[AUTH].forwarded.peer


def scrub(request: web.Request) -> None:
    """Hand the gate's verdict on AiKore's own credentials to the proxy, which takes them off."""
    strip = request.get(STRIP)
    if strip is not None:
        request[proxy.SCRUB] = proxy.Scrub(strip.cookie, strip.authorization, strip.query)


@web.middleware
async def scrub_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    scrub(request)
    return await handler(request)


def _tracking_middleware(proxied: ProxiedRequests) -> Middleware:
    """A public port's requests are all proxied: each is ended when AiKore stops."""

    @web.middleware
    async def track(request: web.Request, handler: Handler) -> web.StreamResponse:
        return await proxied.run(handler(request))

    return track


async def _main_port(request: web.Request) -> web.StreamResponse:
    scrub(request)
    return await request.app[PROXIED].run(request.app[PROXY](request))


async def _close_proxied(app: web.Application) -> None:
    await app[PROXIED].close()


def _public_port_of(table: proxy.RouteTable) -> Callable[[str], int | None]:
    def public_port_of(name: str) -> int | None:
        route = table.get(name)
        return route.public_port if route is not None else None

    return public_port_of


def setup_routing(app: web.Application) -> None:
    """Create the route table, follow instance events, mount /app/<name>/."""
    app[ROUTES] = proxy.RouteTable()
    app[ROUTING] = Routing(app[ROUTES])
    app[PUBLIC_PORT_MOUNTS] = []
    app[PROXIED] = ProxiedRequests()
    # on_shutdown runs before aiohttp waits for open handlers, and before cleanup stops instances.
    app.on_shutdown.append(_close_proxied)
    # At setup, so the supervisor's first announcements (before re-adoption) build the table.
    app[EVENTS].listen(app[ROUTING].on_event)
    proxy.add_app_routes(app.router, _main_port)
    # The gate lets an instance's public-port pages send cookie-authenticated requests to its /app/.
    app[AUTH].public_port_of = _public_port_of(app[ROUTES])
    app.cleanup_ctx.append(_http_client_ctx)


def setup_public_ports(app: web.Application) -> None:
    """Last of all: one listener per live instance with a public port, following the table."""
    app.cleanup_ctx.append(_public_listeners_ctx)


async def _http_client_ctx(app: web.Application) -> AsyncIterator[None]:
    """The shared upstream session and pool, and the /app/<name>/ handler on them."""
    session = app[HTTP_CLIENT] = proxy.client_session()
    pool = app[UPSTREAM_POOL] = proxy.UpstreamPool()
    app[PROXY] = proxy.path_handler(app[ROUTES], session, peer=peer_resolver(app), pool=pool)
    yield
    await pool.close()
    await session.close()


async def _public_listeners_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    routing = app[ROUTING]
    mounts = list(app[PUBLIC_PORT_MOUNTS])

    def configure(public: web.Application) -> None:
        for mount in mounts:
            mount(public)

    listeners = proxy.PublicListeners(
        routing.table,
        app[HTTP_CLIENT],
        host=settings.host,
        # The gate, then what it found to strip handed to the proxy.
        middlewares=[*public_port_middlewares(app), scrub_middleware, _tracking_middleware(app[PROXIED])],
        peer=peer_resolver(app),
        configure=configure,
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
