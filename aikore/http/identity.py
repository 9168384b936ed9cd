"""Who a request is, as the gate established it; views read it from ``request[IDENTITY]``."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from aikore.http.sessions import Session


@dataclass(frozen=True, slots=True)
class Identity:
    """How a request proved itself: ``session``, ``token``, ``none`` (auth off) or ``anonymous``."""

    via: str
    session: Session | None = None
    # The token came as ``?token=`` (the printed login URL), not in a header.
    from_query: bool = False


IDENTITY = web.RequestKey("aikore_identity", Identity)
ANONYMOUS = Identity("anonymous")
# Every request while authentication is off.
NO_AUTH = Identity("none")
