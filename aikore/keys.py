"""Keys still shared between the auth package and the command line (being moved into aikore.http)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from aikore.config import SETTINGS

if TYPE_CHECKING:
    from aikore.http.auth import Auth

# Lines printed at startup after the dashboard URL; each gets that URL (auth adds the login URL).
STARTUP_MESSAGES = web.AppKey("startup_messages", list[Callable[[str], str | None]])
AUTH: web.AppKey[Auth] = web.AppKey("auth")

__all__ = ["AUTH", "SETTINGS", "STARTUP_MESSAGES"]
