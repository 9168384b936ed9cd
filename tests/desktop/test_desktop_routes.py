"""The desktop route table follows the supervisor's instance events.

Selkies answering is part of the instance's readiness (tests/supervisor/test_states.py pins
that a companion with a ready path holds ``starting`` until it answers), so the desktop route is
``starting`` exactly while the instance is, and ``running`` once it is.
"""

from __future__ import annotations

from typing import Any

from aikore.desktop.routes import DesktopRoutes
from aikore.events import EventBus
from aikore.store.instance import Instance
from aikore.supervisor.events import InstanceChanged, InstanceDeleted, InstanceRenamed, Runtime


def _desk(status: str, port: int | None, **extra: Any) -> Instance:
    return Instance(1, "desk", "demo", persistent_mode=True, status=status, persistent_port=port, **extra)


def _routes() -> tuple[EventBus, DesktopRoutes]:
    bus, routes = EventBus(), DesktopRoutes()
    bus.listen(routes.on_event)
    return bus, routes


async def test_route_is_starting_while_the_instance_starts_then_runs_with_it():
    bus, routes = _routes()
    bus.publish(InstanceChanged(_desk("starting", 23456, public_port=19005), Runtime()))
    route = routes.table.get("desk")
    assert route is not None and route.state == "starting" and route.port == 23456
    assert route.public_port == 19005
    bus.publish(InstanceChanged(_desk("running", 23456, public_port=19005), Runtime()))
    assert routes.table.get("desk") is route and route.state == "running" and route.live


async def test_stopping_and_deleting_an_instance_takes_its_desktop_route_down():
    bus, routes = _routes()
    bus.publish(InstanceChanged(_desk("stopping", 23456), Runtime()))
    route = routes.table.get("desk")
    assert route is not None and not route.live
    bus.publish(InstanceChanged(_desk("stopped", None), Runtime()))
    assert routes.table.get("desk") is not None and not routes.table.get("desk").live
    bus.publish(InstanceChanged(_desk("stopped", None).replace(persistent_mode=False), Runtime()))
    assert "desk" not in routes.table
    bus.publish(InstanceChanged(_desk("stopped", None), Runtime()))
    bus.publish(InstanceDeleted(_desk("stopped", None)))
    assert "desk" not in routes.table


async def test_an_instance_without_persistent_mode_has_no_desktop_route():
    bus, routes = _routes()
    bus.publish(InstanceChanged(Instance(2, "plain", "demo", status="running", port=20001), Runtime()))
    assert "plain" not in routes.table


async def test_a_rename_moves_the_desktop_route():
    bus, routes = _routes()
    running = _desk("running", 23456)
    bus.publish(InstanceChanged(running, Runtime()))
    bus.publish(InstanceRenamed("desk", running.replace(name="desk2"), Runtime()))
    assert "desk" not in routes.table and routes.table.get("desk2").live
