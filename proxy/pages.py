"""Fixed error answers. Nothing from the request is ever put into these pages.

They are the proxy's own answers on an app's path, not the app's: each carries the security
headers of a host page (no scripts at all, no framing by other sites, no sniffing), where the
app's own answers are passed through untouched.
"""

from __future__ import annotations

from aiohttp import web

# Inline styles only; nothing else may load, nothing may be submitted, only this origin may frame.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_STARTING_HTML = b"""<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
<title>Starting</title>
<style>body{font-family:system-ui,sans-serif;background:#111;color:#ddd;display:grid;
place-items:center;height:100vh;margin:0}</style></head>
<body><div><h1>Starting&hellip;</h1>
<p>This app is starting. This page reloads itself until it answers.</p></div></body></html>
"""

_STOPPED_HTML = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>Not running</title>
<style>body{font-family:system-ui,sans-serif;background:#111;color:#ddd;display:grid;
place-items:center;height:100vh;margin:0}</style></head>
<body><div><h1>This instance is not running</h1>
<p>It is stopped. Start it from the AiKore dashboard, then reload this page.</p></div></body></html>
"""


def _text(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text + "\n", headers=SECURITY_HEADERS)


def _html(status: int, body: bytes, extra: dict[str, str] | None = None) -> web.Response:
    headers = {**SECURITY_HEADERS, **(extra or {})}
    return web.Response(status=status, body=body, content_type="text/html", headers=headers)


def unknown_instance() -> web.Response:
    """404: no instance by that name."""
    return _text(404, "404 Not Found: no such instance")


def port_only() -> web.Response:
    """404: the instance cannot live under a path; it is served on its public port only."""
    return _text(404, "404 Not Found: this instance is served on its public port only")


def stopped() -> web.Response:
    """503: the instance exists but is not running."""
    return _html(503, _STOPPED_HTML)


def starting() -> web.Response:
    """503 with a page that refreshes itself until the app answers."""
    return _html(503, _STARTING_HTML, {"Retry-After": "2"})


def bad_gateway() -> web.Response:
    """502: the instance is running but its app refused or failed the connection."""
    return _text(502, "502 Bad Gateway: the app did not answer")


def upstream_status(status: int) -> web.Response:
    """The upstream's refusal of a websocket handshake, without its (unsanitised) body."""
    return _text(status, f"{status}: the app refused the websocket handshake")


def bad_websocket_handshake() -> web.Response:
    """400: an upgrade that is not a valid websocket handshake (answered before the app is asked)."""
    return _text(400, "400 Bad Request: not a valid websocket handshake")
