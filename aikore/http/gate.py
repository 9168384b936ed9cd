"""The gate: the middleware in front of every route, doing what ``authorize`` decides.

It describes the request as :class:`~aikore.http.authorize.RequestFacts`, asks ``authorize``, and
carries out the decision: counts a wrong token against the client's address, sets the session
cookie of a ``?token=`` redirect, marks the request with its :class:`Identity` (views only read
that), and takes AiKore's own cookie and bearer token off requests that go on to an instance.
Refusals are AikoreErrors, rendered by ``aikore.errors.render`` like every other.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware
from multidict import CIMultiDictProxy

from aikore.errors import render
from aikore.http.auth import AUTH, Auth
from aikore.http.authorize import Allow, Redirect, Refuse, RequestFacts, authorize
from aikore.http.credentials import Credentials, bearer_of, bearer_token
from aikore.http.forwarded import Peer
from aikore.http.identity import IDENTITY
from aikore.http.origin import UNSAFE_METHODS
from aikore.http.security_headers import HEADERS
from aikore.http.sessions import COOKIE_NAME
from aikore.paths import PROXIED_PREFIXES

# Routes anyone may reach, by the route's canonical path (what the router matched, not the raw
# URL, so no spelling of a path can make a protected route look open).
OPEN_ROUTES = frozenset({"/api/health", "/login", "/logout", "/api/auth/login", "/api/auth/logout"})
# Static files the login page may use; one path segment only, so ``login/../x`` cannot match.
OPEN_STATIC = re.compile(r"^(login|favicon)[A-Za-z0-9_.-]*$")


def gate(auth: Auth, *, public_port: bool = False) -> Middleware:
    """The auth middleware; ``public_port`` for an instance's own listener (all of it protected)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = auth.forwarded.peer(request)
        facts = request_facts(request, peer, public_port=public_port)
        if facts.session_cookie is not None and not public_port and (facts.upgrade or facts.method in UNSAFE_METHODS):
            facts = facts._replace(instance_public_port=_instance_public_port(facts.path, auth))
        decision = authorize(facts, auth)
        if isinstance(decision, Allow):
            request[IDENTITY] = decision.identity
            if decision.strip_credentials:
                # Taken off by the proxy in the one pass that copies the headers (no request clone).
                request[STRIP] = _credentials_in(request, facts, auth.credentials)
            return await handler(request)
        if decision.failed_token:
            auth.credentials.record_failure(peer.address)
        if isinstance(decision, Refuse):
            return _own(render(decision.error))
        return _own(_redirect(decision, auth, peer))

    return middleware


def public_port_middlewares(app: web.Application) -> list[Middleware]:
    """What every instance public-port listener runs: the same gate, with no open routes."""
    return [gate(app[AUTH], public_port=True)]


def request_facts(request: web.Request, peer: Peer, *, public_port: bool) -> RequestFacts:
    """What ``authorize`` needs to know about an aiohttp request."""
    headers = request.headers
    url = request.rel_url
    return RequestFacts(
        method=request.method,
        path=request.path,
        path_qs=url.raw_path_qs,
        host=request.host,
        origin=headers.get(hdrs.ORIGIN),
        referer=headers.get(hdrs.REFERER),
        session_cookie=request.cookies.get(COOKIE_NAME),
        bearer=bearer_of(headers),
        query_token=url.query.get("token"),
        upgrade=is_upgrade(headers),
        wants_html=wants_html(headers),
        open_route=_is_open_route(request),
        public_port=public_port,
        peer=peer,
    )


def is_upgrade(headers: CIMultiDictProxy[str]) -> bool:
    return "websocket" in headers.get(hdrs.UPGRADE, "").lower()


def wants_html(headers: CIMultiDictProxy[str]) -> bool:
    return "text/html" in headers.get(hdrs.ACCEPT, "")


class Strip(NamedTuple):
    """AiKore's own credentials on a request that goes on to an instance, to be taken off it."""

    # The session cookie's name: removed from Cookie headers whatever its value.
    cookie: str
    # The Authorization header carries AiKore's token.
    authorization: bool
    # ("token", value) when the query carries AiKore's token.
    query: tuple[str, str] | None


STRIP = web.RequestKey("aikore_strip", Strip)


def _credentials_in(request: web.Request, facts: RequestFacts, credentials: Credentials) -> Strip:
    # Every Authorization header and every ?token=, not just the first the gate read: a second
    # copy of the token must not ride along to the app either.
    authorization = facts.bearer is not None and credentials.token_matches(facts.bearer)
    values = request.headers.getall(hdrs.AUTHORIZATION, ())
    if not authorization and len(values) > 1:
        authorization = any(
            (token := bearer_token(value)) is not None and credentials.token_matches(token) for value in values
        )
    # Only after the request was let in: comparing with the token here answers no one anything.
    has_token = facts.query_token is not None and credentials.token in request.rel_url.query.getall("token")
    query = ("token", credentials.token) if has_token else None
    return Strip(cookie=COOKIE_NAME, authorization=authorization, query=query)


def _instance_public_port(path: str, auth: Auth) -> int | None:
    """The public port of the instance ``/app/<name>/...`` or ``/desktop/<name>/...`` belongs to."""
    if not path.startswith(PROXIED_PREFIXES):
        return None
    name = path.split("/", 3)[2]
    return auth.public_port_of(name) if name else None


def _own(response: web.Response) -> web.Response:
    """AiKore's own answer carries its security headers, under /app/ too (where apps' answers do not)."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _is_open_route(request: web.Request) -> bool:
    resource = request.match_info.route.resource
    if resource is None:
        return False
    if resource.canonical in OPEN_ROUTES:
        return True
    if isinstance(resource, web.StaticResource):
        return bool(OPEN_STATIC.fullmatch(request.match_info.get("filename", "")))
    return False


def _redirect(decision: Redirect, auth: Auth, peer: Peer) -> web.Response:
    # Never cached: the answer depends on the credentials the browser sent.
    response = web.Response(status=302, headers={hdrs.LOCATION: decision.location, hdrs.CACHE_CONTROL: "no-store"})
    if decision.open_session:
        auth.sessions.set_cookie(response, auth.sessions.open(), peer)
    return response
