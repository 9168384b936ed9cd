"""The proxy fast path's admission check: the gate's own decision, taken without aiohttp.

``proxy.fastpath`` forwards a plain ``/app/<name>/`` request itself only when this says yes;
otherwise aiohttp's stack (and the gate, ``aikore.http.gate``) answers it as usual. The rules are
``authorize``'s, applied to facts read from the fast path's header view, and the fast path takes
only a plain Allow: anything that needs something done (a wrong token to count, a cookie to set, a
refusal or redirect to render) is handed to the gate, which decides again and does it. When in
doubt, the gate's:

- never behind trusted proxies (the gate resolves the client from X-Forwarded-* then);
- never with ``token`` in the query (the gate trades ``?token=`` for a cookie and a redirect);
- the session cookie is read with aiohttp's own cookie parser, as the gate's ``request.cookies``
  is; with an aiohttp that lacks it, cookies are left to the gate.

On admission AiKore's cookie and bearer token are taken out of the headers, as the gate does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import hdrs
from multidict import CIMultiDictProxy

import proxy
from aikore.http.auth import Auth
from aikore.http.authorize import Allow, RequestFacts, authorize
from aikore.http.credentials import bearer_of
from aikore.http.forwarded import Peer
from aikore.http.gate import is_upgrade, strip_aikore_credentials, wants_html
from aikore.http.sessions import COOKIE_NAME
from proxy.fastpath import AcceptFn, FastPath
from proxy.fastpath import Decision as Forward

try:  # The very parser behind aiohttp's request.cookies, so both read the same cookie value.
    from aiohttp._cookie_helpers import parse_cookie_header
except ImportError:  # pragma: no cover - another aiohttp: cookies then always go to the gate
    parse_cookie_header = None

# Distinct Cookie lines whose parse is remembered (a few per browser; cleared when full).
_COOKIE_CACHE = 1024


def fast_path(
    auth: Auth, table: proxy.RouteTable, pool: proxy.UpstreamPool, fallback: Callable[[], asyncio.Protocol]
) -> FastPath:
    """The main port's protocol factory: ``table`` and ``pool`` are the /app/ proxy's, ``fallback``
    (aiohttp's server, ``runner.server``) takes everything the fast path does not."""
    return FastPath(table, pool, fallback, make_accept(auth))


def make_accept(auth: Auth) -> AcceptFn:
    """The accept callback for proxy.fastpath.FastPath: admits what ``authorize`` plainly allows."""
    if auth.settings.trusted_proxies:
        return _to_the_gate
    cookie_values: dict[str, str | None] = {}

    def accept(headers: CIMultiDictProxy[str], method: str, target: str, address: str) -> Forward | None:
        if _has_query_token(target):
            return None
        host = headers.get(hdrs.HOST, "")
        # Positional: on every request, and several times faster than by keyword.
        facts = RequestFacts(
            method,
            target.partition("?")[0],  # path: still percent-encoded, but only its /app/ prefix matters
            target,  # path_qs
            host,
            headers.get(hdrs.ORIGIN),
            headers.get(hdrs.REFERER),
            _session_cookie(headers, cookie_values),
            bearer_of(headers),
            None,  # query_token: any is the gate's, above
            is_upgrade(headers),
            wants_html(headers),
            False,  # open_route: the fast path sees only /app/<name>/, never one
            False,  # public_port: it serves the main port only
            Peer(address, host, "http"),
        )
        decision = authorize(facts, auth)
        if not isinstance(decision, Allow):
            return None
        if not decision.strip_credentials:
            return Forward(headers)
        return Forward(strip_aikore_credentials(auth.credentials, headers))

    return accept


def _to_the_gate(headers: CIMultiDictProxy[str], method: str, target: str, address: str) -> Forward | None:
    return None


def _has_query_token(target: str) -> bool:
    _, mark, query = target.partition("?")
    return bool(mark) and "token" in query.lower()


def _session_cookie(headers: CIMultiDictProxy[str], cache: dict[str, str | None]) -> str | None:
    raw = headers.get(hdrs.COOKIE)
    if raw is None or COOKIE_NAME not in raw or parse_cookie_header is None:
        return None
    # A browser sends the same Cookie line request after request: parse each distinct one once.
    # Only the parse is kept; the session itself (signature, expiry, logout) is checked every time.
    if raw in cache:
        return cache[raw]
    # Last one wins, as in the mapping aiohttp builds for request.cookies.
    value = {name: morsel.value for name, morsel in parse_cookie_header(raw)}.get(COOKIE_NAME)
    if len(cache) >= _COOKIE_CACHE:
        cache.clear()
    cache[raw] = value
    return value
