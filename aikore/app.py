"""``create_app(settings)``: the whole AiKore application, wired in one place."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from aikore.api import setup_api
from aikore.config import SETTINGS, Settings
from aikore.desktop import setup_desktop
from aikore.errors import error_middleware
from aikore.events import EVENTS, EventBus
from aikore.http import setup_http
from aikore.http.dashboard import setup_dashboard
from aikore.models import setup_models
from aikore.monitor import setup_monitor
from aikore.routing import ROUTES, setup_public_ports, setup_routing
from aikore.store import setup_store
from aikore.supervisor import SUPERVISOR, setup_supervisor
from aikore.terminal import setup_terminal
from aikore.versions import setup_versions

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> web.Application:
    """Build the application: each package sets itself up; resources open and close in this order."""
    app = web.Application(
        # Order matters: the error middleware is outermost so every failure below it becomes JSON;
        # setup_http puts the auth gate right behind it, in front of every view and the /app proxy.
        middlewares=[error_middleware],
        # API bodies are read with an explicit limit; proxied uploads stream and are not capped.
        client_max_size=1024**2,
    )
    app[SETTINGS] = settings
    app[EVENTS] = EventBus()
    # Cleanup contexts run in the order the packages are set up here, and close in reverse.
    # The store first: it makes the data dir, which the credentials below live in.
    setup_store(app, settings)
    # The auth gate, the credentials (token and session key live in the data dir), security headers.
    setup_http(app, settings)
    app.cleanup_ctx.append(_events_ctx)
    # The route table follows instance events from the supervisor's first announcement on.
    setup_routing(app)
    setup_supervisor(app, settings)
    # Joins the supervisor (a companion of every persistent start) and the routing.
    setup_desktop(app)
    supervisor = app[SUPERVISOR]
    setup_monitor(
        app, settings, instance_pids=supervisor.instance_pids, route_snapshot=lambda: app[ROUTES].snapshot()
    )
    setup_public_ports(app)
    # The model library and its download queue (resumes unfinished downloads at start).
    setup_models(app, settings)
    # Shells end (on shutdown) before the supervisor stops the instances they work in.
    setup_terminal(app)
    # Updates and rollbacks end (their git and uv killed) before the supervisor stops the instances.
    setup_versions(app)
    setup_api(app)
    setup_dashboard(app)
    return app


async def _events_ctx(app: web.Application) -> AsyncIterator[None]:
    yield
    # Ends open live streams so shutdown does not wait on idle browsers.
    app[EVENTS].close()
