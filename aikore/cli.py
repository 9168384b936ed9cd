"""``aikore`` command: settings from flags/env, then serve until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Sequence

from aiohttp import web

from aikore.app import create_app
from aikore.config import ConfigError, Settings
from aikore.http import AUTH, startup_message
from proxy import SERVER_HANDLER_ARGS

log = logging.getLogger("aikore")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = Settings.from_args(argv)
    except ConfigError as exc:
        print(f"aikore: error: {exc}", file=sys.stderr)
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
    """Run until a stop signal; cleanup contexts then stop every instance gracefully."""
    app = create_app(settings)
    # Header limits raised for the proxy (cookies grow with many apps on one host).
    runner = web.AppRunner(app, access_log=None, **SERVER_HANDLER_ARGS)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True, backlog=128)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        print(f"aikore: error: cannot listen on {settings.host}:{settings.port}: {exc.strerror}", file=sys.stderr)
        return 1
    # The port bound: the one asked for, or the one the OS chose for --port 0.
    port = int(runner.addresses[0][1])
    url = dashboard_url(settings, port)
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
