"""Request handlers: pick the route, answer for unusable ones, and hand the rest to HTTP or WS."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web
from yarl import URL

from . import pages
from .headers import SCRUB, PeerFn, direct_peer, scrub_target
from .http import forward_http
from .table import PORT_ONLY, STRIP_PREFIX, RouteTable
from .upstream import UpstreamPool
from .websocket import forward_websocket, is_upgrade

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

APP_PREFIX = "/app"


def add_app_routes(router: web.UrlDispatcher, handler: Handler, prefix: str = APP_PREFIX) -> None:
    """Mount the handler at <prefix>/<name> and everything below it, for every method."""
    router.add_route("*", f"{prefix}/{{name}}", handler)
    router.add_route("*", f"{prefix}/{{name}}/{{tail:.*}}", handler)


def _split_mount(raw: str) -> tuple[str, str]:
    """Split '/app/<name>/rest?q' into ('/app/<name>', '/rest?q') on the raw, undecoded path."""
    name_start = raw.find("/", 1) + 1
    end = len(raw)
    for sep in "/?":
        found = raw.find(sep, name_start)
        if found != -1 and found < end:
            end = found
    return raw[:end], raw[end:]


def path_handler(
    table: RouteTable,
    session: aiohttp.ClientSession,
    prefix: str = APP_PREFIX,
    *,
    peer: PeerFn = direct_peer,
    pool: UpstreamPool | None = None,
) -> Handler:
    """The handler for <prefix>/<name>/... on the main port.

    ``session`` carries websocket handshakes, ``pool`` plain HTTP (pass the application's shared
    one so shutdown closes its connections), ``peer`` resolves who is asking.
    """
    host = table.upstream_host
    upstream = pool if pool is not None else UpstreamPool()

    async def handle(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        route = table.get(name)
        if route is None:
            return pages.unknown_instance(pages.dashboard_for(prefix))
        if route.mode == PORT_ONLY:
            return pages.port_only()
        raw = request.rel_url.raw_path_qs
        _, rest = _split_mount(raw)
        mount = f"{prefix}/{name}"
        if not rest.startswith("/"):
            # Apps such as ComfyUI derive their API base from the page URL's directory.
            raise web.HTTPTemporaryRedirect(f"{mount}/{rest}")
        if not route.live:
            return pages.stopped(route, pages.dashboard_for(prefix))
        strip = route.mode == STRIP_PREFIX
        scrub = request.get(SCRUB)
        target = scrub_target(rest if strip else raw, scrub)
        client = peer(request)
        upstream_host = route.host or host
        if is_upgrade(request):
            url = URL(f"http://{upstream_host}:{route.port}{target}", encoded=True)
            return await forward_websocket(request, session, route, url, peer=client, prefix=mount, scrub=scrub)
        return await forward_http(
            request, upstream, route, upstream_host, target, peer=client, prefix=mount,
            mount=mount if strip else "", scrub=scrub,
        )

    return handle


def port_handler(
    table: RouteTable,
    session: aiohttp.ClientSession,
    name: str,
    *,
    peer: PeerFn = direct_peer,
    pool: UpstreamPool | None = None,
) -> Handler:
    """The handler for an instance's own public port: every path, forwarded prefix-less."""
    host = table.upstream_host
    upstream = pool if pool is not None else UpstreamPool()

    async def handle(request: web.Request) -> web.StreamResponse:
        route = table.get(name)
        if route is None:
            return pages.unknown_instance()
        if not route.live:
            return pages.stopped(route)
        scrub = request.get(SCRUB)
        target = scrub_target(request.rel_url.raw_path_qs, scrub)
        client = peer(request)
        upstream_host = route.host or host
        if is_upgrade(request):
            url = URL(f"http://{upstream_host}:{route.port}{target}", encoded=True)
            return await forward_websocket(request, session, route, url, peer=client, prefix="", scrub=scrub)
        return await forward_http(
            request, upstream, route, upstream_host, target, peer=client, prefix="", mount="", scrub=scrub
        )

    return handle
