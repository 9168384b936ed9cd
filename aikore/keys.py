"""Every typed application key, in one leaf module so nothing imports app.py for them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

import proxy
from aikore.config import Settings
from aikore.events import EventBus
from aikore.monitor.sampler import Monitor
from aikore.store.blueprints import BlueprintCatalog
from aikore.store.db import Store
from aikore.store.instance import Instance
from aikore.store.workspace import Workspace
from aikore.supervisor.supervisor import Supervisor

if TYPE_CHECKING:
    from aikore.desktop.companion import Desktops
    from aikore.desktop.routes import DesktopRoutes
    from aikore.http.auth import Auth
    from aikore.routing import Routing

# Adds fields to an instance's JSON (proxy metrics, usage, desktop URL...) so api/instances.py
# needs no knowledge of the parts that own them.
InstanceJsonHook = Callable[[web.Application, Instance, dict[str, Any]], None]
# Awaited before an instance is deleted (the supervisor stops it there).
BeforeDelete = Callable[[Instance], Awaitable[None]]

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
EVENTS = web.AppKey("events", EventBus)
BLUEPRINTS = web.AppKey("blueprints", BlueprintCatalog)
WORKSPACE = web.AppKey("workspace", Workspace)
INSTANCE_JSON_HOOKS = web.AppKey("instance_json_hooks", list[InstanceJsonHook])
BEFORE_DELETE = web.AppKey("before_delete", list[BeforeDelete])
# Lines printed at startup after the dashboard URL; each gets that URL (auth adds the login URL).
STARTUP_MESSAGES = web.AppKey("startup_messages", list[Callable[[str], str | None]])
MONITOR = web.AppKey("monitor", Monitor)
# /metrics: a registry of AiKore's own, never prometheus-client's process-global one.
METRICS_REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)
# auth.py reads the keys above, so its type is named lazily here to keep imports acyclic.
AUTH: web.AppKey[Auth] = web.AppKey("auth")
# Instance processes: start/stop/adopt, restart policy; instance_pids() for the monitor.
SUPERVISOR = web.AppKey("supervisor", Supervisor)
# Set when AiKore shuts down: live SSE streams (events, logs) end instead of holding shutdown up.
STREAMS_CLOSING = web.AppKey("streams_closing", asyncio.Event)
# The proxy (aikore/routing.py): one upstream session for every forwarded request, the route
# table instances' states are mirrored into, what keeps it in sync, and the /app/<name>/ handler.
HTTP_CLIENT = web.AppKey("http_client", aiohttp.ClientSession)
# Keep-alive connections for plain HTTP to instances (websocket handshakes use HTTP_CLIENT).
UPSTREAM_POOL = web.AppKey("upstream_pool", proxy.UpstreamPool)
ROUTES = web.AppKey("routes", proxy.RouteTable)
ROUTING: web.AppKey[Routing] = web.AppKey("routing")
PROXY = web.AppKey("proxy_handler", proxy.Handler)
# Persistent mode (aikore/desktop*.py, which import this module, hence the lazy types): the
# supervisor companion that adds a desktop to each start, the /desktop/<name>/ route table, its handler.
DESKTOPS: web.AppKey[Desktops] = web.AppKey("desktops")
DESKTOP_ROUTES: web.AppKey[DesktopRoutes] = web.AppKey("desktop_routes")
DESKTOP_PROXY = web.AppKey("desktop_proxy_handler", proxy.Handler)
