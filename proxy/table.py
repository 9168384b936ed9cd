"""The route table: instance name -> where its app listens, how it is mounted, and its counters."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

STRIP_PREFIX = "strip-prefix"
KEEP_PREFIX = "keep-prefix"
PORT_ONLY = "port-only"
MODES = frozenset({STRIP_PREFIX, KEEP_PREFIX, PORT_ONLY})

# Instance states as AiKore names them; the proxy only needs to tell these apart.
STARTING = "starting"
RUNNING = "running"
# A route in one of these states has a process whose app may answer.
LIVE_STATES = frozenset({STARTING, RUNNING})


@dataclass(slots=True, eq=False)
class Route:
    """One instance as the proxy sees it; counters live here so in-flight requests keep counting."""

    name: str
    port: int | None = None
    mode: str = STRIP_PREFIX
    state: str = "stopped"
    public_port: int | None = None
    # What the proxy's own pages say about it: a crash's exit code, the install phase a starting
    # instance reports, and since when (Unix time) it is in its state.
    exit_code: int | None = None
    phase: str | None = None
    since: float | None = None
    # Where the app listens when not on the upstream host (a cluster node); None: the table's host.
    host: str | None = None
    requests: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    open_websockets: int = 0
    last_activity: float | None = None

    @property
    def live(self) -> bool:
        """True when the instance has a process and a port an app may answer on."""
        return self.port is not None and self.state in LIVE_STATES

    def touch(self) -> None:
        """Record activity now (wall clock, so it can be shown and compared across restarts)."""
        self.last_activity = time.time()

    def metrics(self) -> dict[str, Any]:
        """Counters as JSON-ready values (null, never a placeholder string, when unknown)."""
        return {
            "requests": self.requests,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "open_websockets": self.open_websockets,
            "last_activity": self.last_activity,
        }

    def to_json(self) -> dict[str, Any]:
        """The whole route, for snapshots."""
        return {
            "name": self.name,
            "port": self.port,
            "mode": self.mode,
            "state": self.state,
            "public_port": self.public_port,
            **self.metrics(),
        }


class RouteTable:
    """Names to routes, changed in memory as instances start and stop; no reload step exists."""

    def __init__(self, upstream_host: str = "127.0.0.1") -> None:
        # Target hosts come only from here, never from a request.
        self.upstream_host = upstream_host
        self._routes: dict[str, Route] = {}

    def set(
        self,
        name: str,
        *,
        port: int | None,
        mode: str = STRIP_PREFIX,
        state: str,
        public_port: int | None = None,
        exit_code: int | None = None,
        phase: str | None = None,
        since: float | None = None,
        host: str | None = None,
    ) -> Route:
        """Add or update a route in place, keeping its counters across restarts.

        ``since`` defaults to now when the state changes (kept while it does not).
        """
        if mode not in MODES:
            raise ValueError(f"proxy mode {mode!r} is not one of {sorted(MODES)}")
        route = self._routes.get(name)
        if route is None:
            route = self._routes[name] = Route(name)
        if since is None and (route.state != state or route.since is None):
            since = time.time()
        route.port = port
        route.mode = mode
        route.state = state
        route.public_port = public_port
        route.exit_code = exit_code
        route.phase = phase
        if since is not None:
            route.since = since
        route.host = host
        return route

    def remove(self, name: str) -> Route | None:
        """Forget a route (the instance was deleted); returns it if it existed."""
        return self._routes.pop(name, None)

    def get(self, name: str) -> Route | None:
        """The route for a name, or None."""
        return self._routes.get(name)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """A copy of every route as JSON-ready dicts, keyed by name."""
        return {name: route.to_json() for name, route in self._routes.items()}

    def __iter__(self) -> Iterator[Route]:
        return iter(list(self._routes.values()))

    def __len__(self) -> int:
        return len(self._routes)

    def __contains__(self, name: object) -> bool:
        return name in self._routes
