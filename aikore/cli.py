"""``aikore`` command: settings from flags/env, then serve until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence

from aiohttp import web

from aikore.app import create_app
from aikore.config import ConfigError, Settings
from aikore.http import AUTH, startup_message
from aikore.store.faults import Unusable
from aikore.store.lock import DataDirLock
from aikore.supervisor import slurm
from proxy import SERVER_HANDLER_ARGS, GuardedRunner

log = logging.getLogger("aikore")
# At a stop, requests still running this long after proxied streams were closed are cancelled.
_HANDLER_GRACE = 3.0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = Settings.from_args(argv)
    except ConfigError as exc:
        print(f"aikore: error: {exc}", file=sys.stderr)
        return 2
    if settings.slurm and (missing := slurm.missing_commands()):
        print(f"aikore: error: --slurm needs Slurm's client commands; not found: {', '.join(missing)}",
              file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(serve(settings))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def dashboard_url(settings: Settings, port: int) -> str:
    host = settings.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


async def serve(settings: Settings) -> int:
    """Lock the data dir, bind the port, start (re-adopting instances), run until a stop signal.

    In that order: a second AiKore on the same data dir, or one that cannot listen, exits before
    it adopts - and so before it could stop - anything.
    """
    try:
        lock = DataDirLock.acquire(settings.data_dir)
    except Unusable as exc:
        return _refuse(exc.message)
    try:
        try:
            sockets = listen(settings.host, settings.port)
        except OSError as exc:
            return _refuse(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}")
        return await _serve_on(settings, sockets, lock)
    finally:
        lock.release()


async def _serve_on(settings: Settings, sockets: list[socket.socket], lock: DataDirLock) -> int:
    # The port bound: the one asked for, or the one the OS chose for --port 0 - the settings carry it
    # from here on, since links built from them (a public port's login redirect) must name it.
    port = int(sockets[0].getsockname()[1])
    settings = dataclasses.replace(settings, port=port)
    app = create_app(settings)
    # Header limits raised for the proxy (cookies grow with many apps on one host).
    # Request heads bounded in size and time: before its head is complete a client is anonymous.
    runner = GuardedRunner(app, access_log=None, shutdown_timeout=_HANDLER_GRACE, **SERVER_HANDLER_ARGS)
    try:
        await runner.setup()
    except Unusable as exc:
        await _abandon(runner, sockets)
        return _refuse(exc.message)
    except Exception:
        log.exception("AiKore could not start")
        await _abandon(runner, sockets)
        return 1
    for sock in sockets:
        await web.SockSite(runner, sock, backlog=128).start()
    url = dashboard_url(settings, port)
    lock.describe(f"AiKore pid {os.getpid()} serving {url}")
    print(f"AiKore dashboard: {url}", flush=True)
    # The login URL with the token (or how to log in, or the --no-auth warning).
    line = startup_message(app[AUTH], url)
    if line:
        print(line, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: shutting down instances and listeners")
    await runner.cleanup()
    return 0


def listen(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on every address ``host`` resolves to (as aiohttp's TCPSite would bind).

    With port 0 the first socket's port (the OS's choice) is used for the others too.
    """
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _name, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(128)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


async def _abandon(runner: web.AppRunner, sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()
    await runner.cleanup()


def _refuse(message: str) -> int:
    print(f"aikore: error: {message}", file=sys.stderr, flush=True)
    return 1
