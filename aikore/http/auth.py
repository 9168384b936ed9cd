"""One AiKore's authentication state, as ``setup_http`` creates it and the gate and views use it."""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from aikore.config import Settings
from aikore.http import rebinding
from aikore.http.credentials import Credentials
from aikore.http.forwarded import Forwarded
from aikore.http.ratelimit import LoginLimiter
from aikore.http.sessions import Sessions


class Auth:
    """The credentials, the sessions, who the client is (``forwarded``) and the login limiter."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        limiter: LoginLimiter | None = None,
    ) -> None:
        self.settings = settings
        self.mode = settings.auth
        self.forwarded = Forwarded(settings.trusted_proxies)
        self.limiter = limiter or LoginLimiter()
        self.credentials = Credentials(settings, self.limiter)
        self.sessions = Sessions(settings.data_dir, settings.session_ttl, clock=clock)
        self.enabled = self.mode != "none"
        # The Host names AiKore answers to (DNS rebinding), built once: it looks up this machine's.
        self.hosts = rebinding.AllowedHosts.for_settings(settings)
        # An instance's public port by its name, for the origin rule of /app/<name>/ and
        # /desktop/<name>/; the routing layer provides it (this package knows no instances).
        self.public_port_of: Callable[[str], int | None] = _no_public_port

    def load(self) -> None:
        """Read or create the token and session key under the data dir; hash the password."""
        if not self.enabled:
            return
        self.credentials.load()
        self.sessions.load(self.credentials.fingerprint)


def _no_public_port(name: str) -> int | None:
    return None


AUTH = web.AppKey("auth", Auth)
