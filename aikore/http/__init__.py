"""AiKore's HTTP edge: who may ask (credentials, sessions, the gate) and what answers carry.

One module per concern: ``credentials`` (token, password), ``sessions`` (the signed cookie),
``identity`` (who a request is), ``authorize`` (the one decision), ``gate`` (the middleware that
carries it out), ``origin`` (CSRF), ``rebinding`` (the Host allowlist), ``forwarded`` (the
client behind trusted proxies), ``ratelimit`` (failed logins), ``security_headers``, ``banner``
(the startup login line) and ``secretfiles`` (where the secrets are kept).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from aikore.config import Settings
from aikore.http.auth import AUTH, Auth
from aikore.http.banner import startup_message
from aikore.http.gate import gate
from aikore.http.security_headers import setup_security_headers

__all__ = ["AUTH", "Auth", "setup_http", "startup_message"]


def setup_http(app: web.Application, settings: Settings) -> None:
    """Authentication and security headers for ``app``.

    Call it on an application created with ``middlewares=[error_middleware]``, before anything
    else adds one, and after the setup whose cleanup context creates the data dir (the token and
    session key live there).
    """
    auth = app[AUTH] = Auth(settings)
    # Right behind the error middleware (outermost, so any failure below it becomes JSON) and in
    # front of every view and the /app proxy: closed by default, it answers 401/403/429 itself.
    app.middlewares.append(gate(auth))
    # A response signal, not a middleware, so 404s and errors get the headers too.
    setup_security_headers(app)
    app.cleanup_ctx.append(_credentials_ctx)


async def _credentials_ctx(app: web.Application) -> AsyncIterator[None]:
    """Loads the token, password hash and session key."""
    app[AUTH].load()
    yield
