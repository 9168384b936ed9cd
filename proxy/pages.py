"""Fixed error answers. Nothing from the request is ever put into these pages.

They are the proxy's own answers on an app's path, not the app's: each carries the security
headers of a host page (no scripts at all, no framing by other sites, no sniffing), where the
app's own answers are passed through untouched.
"""

from __future__ import annotations

import html
import time

from aiohttp import web

from .table import Route

# Inline styles only; nothing else may load, nothing may be submitted, only this origin may frame.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8">{refresh}<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;background:#111;color:#ddd;display:grid;
place-items:center;min-height:100vh;margin:0}}div{{max-width:40rem;padding:1rem}}a{{color:#5eb1ff}}</style></head>
<body><div><h1>{heading}</h1>
{body}{back}</div></body></html>
"""


def _page(title: str, heading: str, lines: list[str], dashboard: str | None, refresh: bool = False) -> bytes:
    """One of the proxy's pages; every text is escaped (none comes from the request)."""
    back = (
        f'<p><a href="{html.escape(dashboard)}">Back to the AiKore dashboard</a></p>'
        if dashboard else "<p>Manage it from the AiKore dashboard.</p>"
    )
    return _PAGE.format(
        refresh='<meta http-equiv="refresh" content="2">' if refresh else "",
        title=html.escape(title),
        heading=html.escape(heading),
        body="".join(f"<p>{html.escape(line)}</p>\n" for line in lines),
        back=back,
    ).encode()


def _elapsed(seconds: float) -> str:
    seconds = max(0, int(seconds))
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def dashboard_for(prefix: str) -> str | None:
    """Where the pages link back to: apps mounted under a prefix share the main port, whose root is
    the dashboard; a public port serves the app at its root and has no dashboard to link to."""
    return "/" if prefix else None


def _text(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text + "\n", headers=SECURITY_HEADERS)


def _html(status: int, body: bytes, extra: dict[str, str] | None = None) -> web.Response:
    headers = {**SECURITY_HEADERS, **(extra or {})}
    return web.Response(status=status, body=body, content_type="text/html", headers=headers)


def unknown_instance(dashboard: str | None = None) -> web.Response:
    """404: no instance by that name (which is not repeated: it comes from the request)."""
    body = _page("Not found", "No such instance", ["No instance has this name (any more)."], dashboard)
    return _html(404, body)


def port_only() -> web.Response:
    """404: the instance cannot live under a path; it is served on its public port only."""
    return _text(404, "404 Not Found: this instance is served on its public port only")


def stopped(route: Route, dashboard: str | None = None) -> web.Response:
    """503: the instance exists but is not running: stopped, or crashed (with its exit code)."""
    if route.state == "error":
        code = f" with exit code {route.exit_code}" if route.exit_code is not None else ""
        lines = [f"{route.name} crashed{code}.", "Its log says why; start it again from the dashboard."]
    else:
        lines = [f"{route.name} is {route.state}.", "Start it from the AiKore dashboard, then reload this page."]
    return _html(503, _page("Not running", "This instance is not running", lines, dashboard))


def starting(route: Route, dashboard: str | None = None, *, now: float | None = None) -> web.Response:
    """503 with a page that refreshes itself until the app answers, saying how far the start is."""
    lines = [f"{route.name} is starting. This page reloads itself until it answers."]
    if route.phase:
        lines.append(f"Now: {route.phase}.")
    if route.since is not None:
        lines.append(f"Starting for {_elapsed((now or time.time()) - route.since)}.")
    body = _page("Starting", "Starting\u2026", lines, dashboard, refresh=True)
    return _html(503, body, {"Retry-After": "2"})


def bad_gateway() -> web.Response:
    """502: the instance is running but its app refused or failed the connection."""
    return _text(502, "502 Bad Gateway: the app did not answer")


def upstream_status(status: int) -> web.Response:
    """The upstream's refusal of a websocket handshake, without its (unsanitised) body."""
    return _text(status, f"{status}: the app refused the websocket handshake")


def bad_websocket_handshake() -> web.Response:
    """400: an upgrade that is not a valid websocket handshake (answered before the app is asked)."""
    return _text(400, "400 Bad Request: not a valid websocket handshake")
