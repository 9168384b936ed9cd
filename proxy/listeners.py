"""Per-instance public ports: one listener each, opened and closed while AiKore runs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Middleware

from .client import SERVER_HANDLER_ARGS
from .dispatch import port_handler
from .headers import PeerFn, direct_peer
from .heads import GuardedRunner
from .table import RouteTable
from .upstream import UpstreamPool

log = logging.getLogger(__name__)

# In-flight requests get this long to finish when a listener closes; the instance is
# stopping anyway, so its connections are about to end on their own.
_SHUTDOWN_TIMEOUT = 2.0


@dataclass(slots=True)
class _Listener:
    port: int
    runner: web.AppRunner


class PublicListeners:
    """Open and close one listener per public port; each forwards every path to one instance."""

    def __init__(
        self,
        table: RouteTable,
        session: aiohttp.ClientSession,
        *,
        host: str = "127.0.0.1",
        middlewares: Iterable[Middleware] = (),
        configure: Callable[[web.Application], None] | None = None,
        peer: PeerFn = direct_peer,
        pool: UpstreamPool | None = None,
    ) -> None:
        self._table = table
        self._session = session
        self._host = host
        self._middlewares = tuple(middlewares)
        # Lets the host application put what its middlewares look up (auth state) on each app.
        self._configure = configure
        self._peer = peer
        self._pool = pool if pool is not None else UpstreamPool()
        self._own_pool = pool is None
        self._listeners: dict[str, _Listener] = {}

    @property
    def ports(self) -> dict[str, int]:
        """Instance name -> the public port currently listening for it."""
        return {name: listener.port for name, listener in self._listeners.items()}

    async def open(self, name: str, port: int) -> None:
        """Listen on port for the named instance (replacing a listener on another port)."""
        current = self._listeners.get(name)
        if current is not None:
            if current.port == port:
                return
            await self.close(name)
        app = web.Application(middlewares=self._middlewares)
        if self._configure is not None:
            self._configure(app)
        app.router.add_route(
            "*",
            "/{tail:.*}",
            port_handler(self._table, self._session, name, peer=self._peer, pool=self._pool),
        )
        # Anonymous clients reach this port too: their heads are bounded in size and time.
        runner = GuardedRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT, **SERVER_HANDLER_ARGS)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._listeners[name] = _Listener(port, runner)
        log.info("public port %d open for %s", port, name)

    async def close(self, name: str) -> None:
        """Stop listening for the named instance, if a listener is open."""
        listener = self._listeners.pop(name, None)
        if listener is None:
            return
        await listener.runner.cleanup()
        log.info("public port %d closed for %s", listener.port, name)

    async def sync(self) -> None:
        """Match listeners to the table: open for live routes with a public port, close the rest."""
        wanted = {r.name: r.public_port for r in self._table if r.live and r.public_port}
        for name in list(self._listeners):
            if wanted.get(name) != self._listeners[name].port:
                await self.close(name)
        for name, port in wanted.items():
            if name not in self._listeners:
                try:
                    await self.open(name, port)
                except OSError:
                    log.exception("cannot open public port %d for %s", port, name)

    async def close_all(self) -> None:
        """Close every listener (application shutdown)."""
        for name in list(self._listeners):
            await self.close(name)
        if self._own_pool:
            await self._pool.close()
