"""Security headers on AiKore's own pages and API answers, never on what instances send.

Added on ``on_response_prepare`` rather than in a middleware so that every answer gets them,
including 404s, redirects and errors rendered further out; proxied ``/app/`` and ``/desktop/``
responses are left exactly as the app sent them (their own CSP, framing rules and all), and
public-port listeners are separate applications this never touches.
"""

from __future__ import annotations

from aiohttp import web

from aikore.paths import is_proxied

# No inline scripts anywhere on the dashboard: an injected <script> cannot run. Inline styles
# stay allowed (the login page is one self-contained file). Frames: the dashboard may show
# instances, which live on this origin (/app/) or on a public port of the same host.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "frame-src 'self' http: https:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    )
)

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # For browsers without frame-ancestors; a public-port page cannot frame the dashboard.
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "same-origin",
}


async def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
    if is_proxied(request.path):
        return
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)


def setup_security_headers(app: web.Application) -> None:
    """Add the headers to every dashboard and API response of ``app``."""
    app.on_response_prepare.append(_add_headers)
