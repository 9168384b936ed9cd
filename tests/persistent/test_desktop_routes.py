"""The desktop route table: follows instance JSON, and is ``starting`` until Selkies answers."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import web

from aikore.desktop.routes import DesktopRoutes
from tests.helpers import free_port


def _data(status: str, port: int | None, **extra: Any) -> dict[str, Any]:
    return {"name": "desk", "persistent_mode": True, "status": status, "persistent_port": port, **extra}


async def _wait_running(routes: DesktopRoutes) -> None:
    """Poll for up to 10 s (the probe checks every 0.5 s)."""
    for _ in range(500):
        route = routes.table.get("desk")
        if route is not None and route.state == "running":
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the desktop route never became running")


async def _selkies_page(request: web.Request) -> web.Response:
    return web.Response(text="<html>selkies</html>")


async def test_route_stays_starting_until_the_selkies_port_answers_then_runs():
    port = free_port()
    routes = DesktopRoutes()
    async with aiohttp.ClientSession() as session:
        routes.session = session
        routes.sync(_data("running", port, public_port=19005))
        route = routes.table.get("desk")
        assert route is not None and route.state == "starting" and route.port == port
        assert route.public_port == 19005
        await asyncio.sleep(0.6)
        assert route.state == "starting"  # nothing listens yet: browsers get the refreshing page

        app = web.Application()
        app.router.add_get("/", _selkies_page)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            await _wait_running(routes)
        finally:
            await runner.cleanup()
            await routes.close()


async def test_stopping_and_deleting_an_instance_takes_its_desktop_route_down():
    routes = DesktopRoutes()
    routes.sync(_data("stopping", 23456))
    route = routes.table.get("desk")
    assert route is not None and not route.live
    routes.sync(_data("stopped", None))
    assert routes.table.get("desk") is not None and not routes.table.get("desk").live
    routes.sync({**_data("stopped", None), "persistent_mode": False})
    assert "desk" not in routes.table


async def test_an_instance_without_persistent_mode_has_no_desktop_route():
    routes = DesktopRoutes()
    routes.sync({"name": "plain", "persistent_mode": False, "status": "running", "persistent_port": None})
    assert "plain" not in routes.table
