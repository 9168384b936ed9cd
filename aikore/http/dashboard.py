"""The dashboard page and its static assets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from aikore import __version__
from aikore.config import SETTINGS, Settings
from aikore.resources import static_dir
from aikore.store.instance import dashboard_constants

# Inside the package, so a wheel ships them; static/ holds only files served as they are.
TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC_ROUTE = "static"


def dashboard_context(settings: Settings) -> dict[str, Any]:
    """What the index template needs that the API does not already give the page."""
    ports = settings.public_ports
    config = dashboard_constants()
    return {
        "version": __version__,
        "auth": settings.auth,
        "public_ports": f"{ports.start}-{ports.stop - 1}" if len(ports) else "",
        # Rendered as a JSON block the scripts read (static/js/config.js), so none is copied there.
        "config": config,
        "name_pattern": html_pattern(config["name_pattern"]),
    }


def html_pattern(regex: str) -> str:
    """A regex as an HTML ``pattern`` attribute, which browsers compile in the stricter ``v`` mode."""
    # v mode refuses an unescaped "-" at either end of a character class ("[a-z_-]").
    return re.sub(r"(?<=\[)-|-(?=\])", r"\\-", regex)


async def index(request: web.Request) -> web.Response:
    """The single page; everything else it shows comes from the API and its live streams."""
    context = dashboard_context(request.app[SETTINGS])
    response = aiohttp_jinja2.render_template("index.html", request, context)
    # Re-read on every load, so a new release's page is picked up.
    response.headers["Cache-Control"] = "no-cache"
    return response


async def _revalidate_static(request: web.Request, response: web.StreamResponse) -> None:
    # The ES modules import each other by plain relative URLs, so a version query on main.js alone
    # would still let a browser mix cached old modules with new ones after an upgrade. Every asset
    # is revalidated instead: aiohttp's ETag/Last-Modified make an unchanged file a bodiless 304.
    resource = request.match_info.route.resource
    if resource is not None and resource.name == STATIC_ROUTE:
        response.headers["Cache-Control"] = "no-cache"


def setup_dashboard(app: web.Application) -> None:
    """The page at /, its templates (also the login page's), and /static/ with revalidation."""
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True)
    app.router.add_get("/", index, name="index")
    app.router.add_static("/static/", static_dir(), name=STATIC_ROUTE, append_version=False)
    app.on_response_prepare.append(_revalidate_static)
