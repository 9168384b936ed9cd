"""Header rules for both directions: hop-by-hop stripping, X-Forwarded-*, Location rewriting."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol
from urllib.parse import unquote_plus, urlsplit

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

try:  # The very parser behind aiohttp's request.cookies: a cookie is removed exactly as it was read.
    from aiohttp._cookie_helpers import parse_cookie_header
except ImportError:  # pragma: no cover - an aiohttp without it parses with the stdlib's pattern
    from http.cookies import SimpleCookie

    def parse_cookie_header(header: str) -> list[tuple[str, object]]:  # type: ignore[misc]
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        return list(jar.items())

# RFC 9110 hop-by-hop headers: they describe one connection, never the next one.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

# Besides hop-by-hop: Expect is answered by this server already (aiohttp sends 100 Continue),
# and Forwarded is a client claim the upstream must not trust.
_DROP_FROM_REQUEST = HOP_BY_HOP | {"expect", "forwarded"}

# The websocket handshake is renegotiated by the client library on the upstream leg.
_DROP_FROM_WS_REQUEST = _DROP_FROM_REQUEST | {
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "sec-websocket-accept",
}

# Client claims about its own address: only AiKore says who the client is (it sets X-Forwarded-*).
_CLIENT_ADDRESS = frozenset({"x-real-ip", "true-client-ip", "x-client-ip", "forwarded-for", "client-ip"})
_FORWARDED_PREFIX = "x-forwarded-"


@dataclass(frozen=True, slots=True)
class Scrub:
    """The host application's own credentials to take off a request before it goes upstream.

    The host (its auth gate) attaches one to a request under ``SCRUB``; the proxy removes them in
    the one pass that copies the headers, so an app never sees the key to the host.
    """

    # A cookie to remove from every Cookie header.
    cookie: str | None = None
    # The Authorization header to remove (the host's bearer token).
    authorization: bool = False
    # A query parameter (name, value) to remove from the target.
    query: tuple[str, str] | None = None


SCRUB = web.RequestKey("proxy_scrub", Scrub)


class PeerInfo(Protocol):
    """Who is asking, as the host application resolved it (after any trusted proxy in front)."""

    @property
    def address(self) -> str | None: ...
    @property
    def host(self) -> str: ...
    @property
    def scheme(self) -> str: ...


class DirectPeer(NamedTuple):
    """The peer as the socket sees it: right when nothing sits in front of this server."""

    address: str | None
    host: str
    scheme: str


PeerFn = Callable[[web.Request], PeerInfo]


def direct_peer(request: web.Request) -> DirectPeer:
    """The default PeerFn: trust only the socket."""
    return DirectPeer(request.remote, request.host, request.scheme)


def _connection_tokens(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> frozenset[str]:
    """Header names listed in Connection: are hop-by-hop for this message too."""
    values = headers.getall("Connection", ())
    if not values:
        return frozenset()
    return frozenset(t.strip().lower() for v in values for t in v.split(",") if t.strip())


def upstream_request_headers(
    headers: CIMultiDictProxy[str],
    *,
    peer: PeerInfo,
    prefix: str,
    websocket: bool = False,
    scrub: Scrub | None = None,
) -> CIMultiDict[str]:
    """The browser's headers as the upstream gets them: Host kept, X-Forwarded-* authoritative.

    One copy: hop-by-hop headers, client address claims and what ``scrub`` names are left out.
    """
    drop = _DROP_FROM_WS_REQUEST if websocket else _DROP_FROM_REQUEST
    extra = _connection_tokens(headers)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        lower = name.lower()
        if lower in drop or lower in extra or _claims_client_address(lower):
            continue
        if scrub is not None:
            if lower == "cookie" and scrub.cookie is not None:
                value = _without_cookie(value, scrub.cookie)
                if not value:
                    continue
            elif lower == "authorization" and scrub.authorization:
                continue
        out.add(name, value)
    if peer.address:
        out["X-Forwarded-For"] = peer.address
    out["X-Forwarded-Host"] = peer.host
    out["X-Forwarded-Proto"] = peer.scheme
    if prefix:
        out["X-Forwarded-Prefix"] = prefix
    return out


def _claims_client_address(lower: str) -> bool:
    # Underscore spellings too: some servers (and WSGI stacks) read X_Forwarded_For as X-Forwarded-For.
    name = lower.replace("_", "-")
    return name.startswith(_FORWARDED_PREFIX) or name in _CLIENT_ADDRESS


def _without_cookie(header: str, name: str) -> str:
    """A Cookie header without the cookie ``name``, split exactly as aiohttp's parser splits it."""
    if name not in header:
        return header
    parsed = parse_cookie_header(header)
    if all(cookie != name for cookie, _ in parsed):
        return header
    return "; ".join(f"{cookie}={morsel.coded_value}" for cookie, morsel in parsed if cookie != name)


def scrub_target(target: str, scrub: Scrub | None) -> str:
    """The request target without the query parameter ``scrub`` names (the rest kept as sent)."""
    if scrub is None or scrub.query is None or "?" not in target:
        return target
    path, _, query = target.partition("?")
    name, value = scrub.query
    kept = [part for part in query.split("&") if not _is_param(part, name, value)]
    return f"{path}?{'&'.join(kept)}" if kept else path


def _is_param(part: str, name: str, value: str) -> bool:
    key, _, text = part.partition("=")
    return unquote_plus(key) == name and unquote_plus(text) == value


def downstream_response_headers(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    """The upstream's headers for the browser: repeated ones (Set-Cookie) kept, hop-by-hop gone."""
    extra = _connection_tokens(headers)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        lower = name.lower()
        if lower in HOP_BY_HOP or lower in extra:
            continue
        out.add(name, value)
    return out


def rewrite_location(location: str, *, mount: str, own_hosts: frozenset[str]) -> str:
    """Keep redirects inside the mount: own-host absolute URLs become paths, paths get the prefix."""
    if location.startswith("//") or "://" in location:
        parts = urlsplit(location)
        if parts.netloc.lower() not in own_hosts:
            return location
        location = parts.path or "/"
        if parts.query:
            location += "?" + parts.query
        if parts.fragment:
            location += "#" + parts.fragment
    if not mount or not location.startswith("/"):
        return location
    # A prefix-aware app (Gradio with root_path) already redirects inside the mount.
    if location == mount or location.startswith((mount + "/", mount + "?", mount + "#")):
        return location
    return mount + location
