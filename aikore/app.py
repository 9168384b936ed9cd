"""``create_app(settings)``: the whole AiKore application, wired in one place."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp_jinja2
import jinja2
from aiohttp import web

from aikore import keys
from aikore.api import actions, setup_api, system
from aikore.config import Settings
from aikore.desktop.routes import desktop_ctx, setup_desktop
from aikore.errors import error_middleware
from aikore.events import EventBus
from aikore.http.auth import Auth, auth_ctx, gate, setup_auth
from aikore.http.dashboard import setup_dashboard
from aikore.http.security_headers import setup_security_headers
from aikore.resources import builtin_blueprints_dir, static_dir
from aikore.routing import http_client_ctx, public_listeners_ctx, setup_routing
from aikore.store.blueprints import BlueprintCatalog
from aikore.store.db import Store
from aikore.store.workspace import Workspace

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> web.Application:
    """Build the application; resources open and close through cleanup contexts, in this order."""
    auth = Auth(settings)
    app = web.Application(
        # Order matters: the error middleware is outermost so every failure below it becomes JSON.
        # The auth gate comes next, before every view and the /app proxy: closed by default, it
        # answers 401/403/429 itself (with WWW-Authenticate / Retry-After) or lets a request in.
        middlewares=[error_middleware, gate(auth)],
        # API bodies are read with an explicit limit; proxied uploads stream and are not capped.
        client_max_size=1024**2,
    )
    app[keys.SETTINGS] = settings
    app[keys.EVENTS] = EventBus()
    app[keys.BLUEPRINTS] = BlueprintCatalog(builtin_blueprints_dir(), settings.blueprints_dir or settings.data_dir)
    app[keys.WORKSPACE] = Workspace(settings.instances_dir, settings.data_dir / "trash")
    app[keys.INSTANCE_JSON_HOOKS] = []
    app[keys.BEFORE_DELETE] = []
    app[keys.STARTUP_MESSAGES] = []
    setup_auth(app, auth)
    # A response signal, not a middleware, so 404s and errors get the headers too.
    setup_security_headers(app)

    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(str(static_dir())), autoescape=True)
    setup_api(app)
    setup_dashboard(app)
    setup_desktop(app)
    setup_routing(app)

    # Dependency order: db → http client → supervisor → monitor → public listeners.
    app.cleanup_ctx.append(_data_dir_ctx)
    app.cleanup_ctx.append(auth_ctx)  # token and session key live in the data dir
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(_events_ctx)
    # Before the supervisor, so re-adoption and autostart events already reach the route table.
    app.cleanup_ctx.append(http_client_ctx)
    # Needs the store; before the monitor, so on exit instances stop while events still flow.
    app.cleanup_ctx.append(actions.supervisor_ctx)
    # Joins the supervisor as a companion factory before its autostart task runs.
    app.cleanup_ctx.append(desktop_ctx)
    app.cleanup_ctx.append(system.monitor_ctx)
    app.cleanup_ctx.append(public_listeners_ctx)
    return app


async def _data_dir_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    for folder in (settings.data_dir, settings.instances_dir, settings.models_dir, settings.blueprints_dir):
        assert folder is not None
        folder.mkdir(parents=True, exist_ok=True)
    app[keys.WORKSPACE].clean_partial()
    yield


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    store = Store(app[keys.SETTINGS].db_path)
    await store.open()
    app[keys.STORE] = store
    yield
    await store.close()


async def _events_ctx(app: web.Application) -> AsyncIterator[None]:
    yield
    # Ends open live streams so shutdown does not wait on idle browsers.
    app[keys.EVENTS].close()
