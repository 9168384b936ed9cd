"""The dashboard page and its static assets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from aikore import __version__, keys
from aikore.config import Settings
from aikore.resources import static_dir

# Inside the package, so a wheel ships them; static/ holds only files served as they are.
TEMPLATES = Path(__file__).resolve().parent / "templates"


def dashboard_context(settings: Settings) -> dict[str, Any]:
    """What the index template needs that the API does not already give the page."""
    ports = settings.public_ports
    return {
        # Also the cache-busting query of our own assets: a new release is fetched, never stale.
        "version": __version__,
        "auth": settings.auth,
        "public_ports": f"{ports.start}-{ports.stop - 1}" if len(ports) else "",
    }


async def index(request: web.Request) -> web.Response:
    """The single page; everything else it shows comes from the API and its live streams."""
    context = dashboard_context(request.app[keys.SETTINGS])
    response = aiohttp_jinja2.render_template("index.html", request, context)
    # The page names versioned assets; it must itself be re-read so a new release is picked up.
    response.headers["Cache-Control"] = "no-cache"
    return response


def setup_dashboard(app: web.Application) -> None:
    """The page at /, its templates (also the login page's), and /static/."""
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True)
    app.router.add_get("/", index, name="index")
    app.router.add_static("/static/", static_dir(), name="static", append_version=False)
