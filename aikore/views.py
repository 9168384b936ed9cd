"""The dashboard page and its static assets."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from aikore import __version__, keys
from aikore.resources import static_dir


async def index(request: web.Request) -> web.Response:
    settings = request.app[keys.SETTINGS]
    context = {"version": __version__, "auth": settings.auth}
    return aiohttp_jinja2.render_template("index.html", request, context)


def setup_dashboard(app: web.Application) -> None:
    app.router.add_get("/", index, name="index")
    app.router.add_static("/static/", static_dir(), name="static", append_version=False)
