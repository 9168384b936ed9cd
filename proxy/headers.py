"""Header rules for both directions: hop-by-hop stripping, X-Forwarded-*, Location rewriting."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol
from urllib.parse import urlsplit

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

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

_FORWARDED_PREFIX = "x-forwarded-"


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
) -> CIMultiDict[str]:
    """The browser's headers as the upstream gets them: Host kept, X-Forwarded-* authoritative."""
    drop = _DROP_FROM_WS_REQUEST if websocket else _DROP_FROM_REQUEST
    extra = _connection_tokens(headers)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        lower = name.lower()
        if lower in drop or lower in extra or lower.startswith(_FORWARDED_PREFIX):
            continue
        out.add(name, value)
    if peer.address:
        out["X-Forwarded-For"] = peer.address
    out["X-Forwarded-Host"] = peer.host
    out["X-Forwarded-Proto"] = peer.scheme
    if prefix:
        out["X-Forwarded-Prefix"] = prefix
    return out


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
