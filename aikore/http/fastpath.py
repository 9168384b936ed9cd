"""The proxy fast path's admission check: a strict subset of what the auth gate lets through.

``proxy.fastpath`` forwards a plain ``/app/<name>/`` request itself only when this says yes;
otherwise aiohttp's stack (and the gate in ``aikore.http.auth``) answers it as usual. So every rule
here mirrors one of the gate's acceptance conditions for proxied paths, and when in doubt the
answer is "no" (the gate then decides, counts failed tokens and renders 401/429/redirects):

- auth off: only when the gate would not refuse the Host (loopback-only AiKore: loopback names);
- a valid ``aikore_session`` cookie, parsed by aiohttp's own cookie parser as the gate's
  ``request.cookies`` is;
- else ``Authorization: Bearer <token>`` matching the token, from an address the login limiter
  is not holding back (a wrong token is the gate's to count);
- never ``?token=`` (the gate trades it for a cookie and a redirect), never behind trusted proxies
  (the gate resolves the client from X-Forwarded-* then).

On admission AiKore's cookie and bearer token are taken out of the headers, as the gate does.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

from aiohttp import hdrs, web
from multidict import CIMultiDictProxy

from aikore import keys
from aikore.http.auth import COOKIE_NAME, Auth, bearer_of, is_loopback, strip_aikore_credentials
from proxy.fastpath import AcceptFn, Decision, FastPath

try:  # The very parser behind aiohttp's request.cookies, so both read the same cookie value.
    from aiohttp._cookie_helpers import parse_cookie_header
except ImportError:  # pragma: no cover - another aiohttp: cookies then always go to the gate
    parse_cookie_header = None

# Distinct Cookie lines whose parse is remembered (a few per browser; cleared when full).
_COOKIE_CACHE = 1024
# Host names the no-auth rebinding guard certainly accepts (a subset of its loopback test).
_LOOPBACK_HOST = re.compile(r"(?:127\.0\.0\.1|localhost|\[::1\])(?::([0-9]{1,5}))?", re.IGNORECASE)


def fast_path(app: web.Application, fallback: Callable[[], asyncio.Protocol]) -> FastPath:
    """The main port's protocol factory: the app's route table and pool, ``fallback`` (aiohttp's
    server, ``runner.server``) for everything the fast path does not take."""
    return FastPath(app[keys.ROUTES], app[keys.UPSTREAM_POOL], fallback, make_accept(app[keys.AUTH]))


def make_accept(auth: Auth) -> AcceptFn:
    """The accept callback for proxy.fastpath.FastPath, built on the gate's credentials."""
    if not auth.enabled:
        return _accept_without_auth(guard_host=is_loopback(auth.settings.host))
    trusted = bool(auth.settings.trusted_proxies)
    cookie_values: dict[str, str | None] = {}

    def accept(headers: CIMultiDictProxy[str], method: str, target: str, address: str) -> Decision | None:
        if trusted or _has_query_token(target):
            return None
        if not _has_session(auth, headers, cookie_values):
            bearer = bearer_of(headers)
            if bearer is None or auth.limiter.retry_after(address) is not None or not auth.token_matches(bearer):
                return None
        return Decision(strip_aikore_credentials(auth, headers))

    return accept


def _accept_without_auth(*, guard_host: bool) -> AcceptFn:
    def accept(headers: CIMultiDictProxy[str], method: str, target: str, address: str) -> Decision | None:
        if guard_host and not loopback_host(headers.get(hdrs.HOST, "")):
            return None
        return Decision(headers)

    return accept


def loopback_host(host: str) -> bool:
    """True for Host values the gate's rebinding guard certainly accepts (a plain loopback name)."""
    match = _LOOPBACK_HOST.fullmatch(host)
    if match is None:
        return False
    port = match.group(1)
    return port is None or int(port) <= 65535


def _has_query_token(target: str) -> bool:
    _, mark, query = target.partition("?")
    return bool(mark) and "token" in query.lower()


def _has_session(auth: Auth, headers: CIMultiDictProxy[str], cache: dict[str, str | None]) -> bool:
    raw = headers.get(hdrs.COOKIE)
    if raw is None or COOKIE_NAME not in raw or parse_cookie_header is None:
        return False
    # A browser sends the same Cookie line request after request: parse each distinct one once.
    # Only the parse is kept; the session itself (signature, expiry, logout) is checked every time.
    if raw in cache:
        value = cache[raw]
    else:
        # Last one wins, as in the mapping aiohttp builds for request.cookies.
        value = {name: morsel.value for name, morsel in parse_cookie_header(raw)}.get(COOKIE_NAME)
        if len(cache) >= _COOKIE_CACHE:
            cache.clear()
        cache[raw] = value
    return auth.session_from_cookie(value) is not None
