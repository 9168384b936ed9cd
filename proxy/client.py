"""The shared upstream ClientSession (websocket handshakes) and the server limits a proxy needs.

Plain HTTP goes through proxy.upstream.UpstreamPool, which holds PROXY.md items 1-5 by
construction: no pool cap, no cookie store, no timeout but connect, no redirects followed, bodies
never decoded, and only the headers the browser sent.
"""

from __future__ import annotations

from typing import Any

import aiohttp

# Upstream answers: cookies grow with many apps on one host; aiohttp's 8 KiB limits reject them.
MAX_LINE_SIZE = 64 * 1024
MAX_FIELD_SIZE = 64 * 1024
MAX_HEADERS = 256

# Browsers' requests, sized for real ones (anything before the gate is anonymous): a request
# line far longer than any server in front of an app accepts (8 KiB is common), one header up to
# 64 KiB (a Cookie line of many apps' cookies; a browser caps each at 4 KB), as many headers as
# aiohttp allows by default (browsers send a few dozen). The head as a whole is bounded, and
# given a deadline, by proxy.heads (GuardedRunner).
SERVER_MAX_LINE_SIZE = 16 * 1024
SERVER_MAX_FIELD_SIZE = 64 * 1024
SERVER_MAX_HEADERS = 128
# Seconds an idle kept-alive connection stays open (aiohttp's AppRunner default is an hour).
SERVER_KEEPALIVE = 75.0

# Keyword arguments for the server side: web.run_app(handler_args=...) / AppRunner(app, **...).
SERVER_HANDLER_ARGS: dict[str, Any] = {
    "max_line_size": SERVER_MAX_LINE_SIZE,
    "max_field_size": SERVER_MAX_FIELD_SIZE,
    "max_headers": SERVER_MAX_HEADERS,
    "keepalive_timeout": SERVER_KEEPALIVE,
}

# aiohttp adds these when absent; a proxy must send only what the browser sent.
_SKIP_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")

# Larger reads mean fewer Python-level hops per streamed megabyte.
_READ_BUFSIZE = 256 * 1024


def client_session(connect_timeout: float = 10.0) -> aiohttp.ClientSession:
    """One session per process for websocket handshakes to instances (PROXY.md items 1-5, 13)."""
    return aiohttp.ClientSession(
        # No pool cap: long SSE and websocket connections must not starve new requests.
        connector=aiohttp.TCPConnector(limit=0, limit_per_host=0),
        # Upstream cookies belong to the browser; a shared jar would hand them to everybody.
        cookie_jar=aiohttp.DummyCookieJar(),
        # Generations, SSE queues and big downloads run as long as they need.
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout),
        # Bodies pass through byte for byte; decoding here would corrupt them downstream.
        auto_decompress=False,
        skip_auto_headers=_SKIP_AUTO_HEADERS,
        read_bufsize=_READ_BUFSIZE,
        max_line_size=MAX_LINE_SIZE,
        max_field_size=MAX_FIELD_SIZE,
        max_headers=MAX_HEADERS,
    )
