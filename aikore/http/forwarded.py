"""Who is really asking: the client address, host and scheme, believing proxies only when trusted.

``X-Forwarded-*`` headers are client-controlled unless they were set by a reverse proxy the
operator named in ``--trusted-proxies``; believing them from anyone would let an attacker pick the
address the login limiter counts against, or the origin the CSRF check compares with.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import NamedTuple

from aiohttp import web

from aikore.config import Network, parse_networks


def parse_trusted(entries: Iterable[str]) -> tuple[Network, ...]:
    """``("10.0.0.1", "172.16.0.0/12")`` → networks; a bad entry names itself."""
    # The same parser that checked --trusted-proxies at startup, so both accept the same entries.
    return parse_networks("AIKORE_TRUSTED_PROXIES", entries)


# A NamedTuple, like proxy's DirectPeer: one is made for every request, and cheaply.
class Peer(NamedTuple):
    """What the gate knows about the browser or script behind a request."""

    address: str
    # "host[:port]" the client addressed (Host, or X-Forwarded-Host from a trusted proxy).
    host: str
    scheme: str


class Forwarded:
    """Resolves a request's :class:`Peer` from the socket, or from a trusted proxy's headers."""

    def __init__(self, trusted: Iterable[str] = ()) -> None:
        self._trusted = parse_trusted(trusted)

    def peer(self, request: web.Request) -> Peer:
        socket_addr = _socket_address(request)
        host = request.headers.get("Host", "")
        scheme = request.scheme
        if not self._is_trusted(socket_addr):
            return Peer(socket_addr, host, scheme)
        address = self._forwarded_for(request, socket_addr)
        fwd_host = _last(request.headers.get("X-Forwarded-Host", ""))
        fwd_proto = _last(request.headers.get("X-Forwarded-Proto", "")).lower()
        return Peer(
            address,
            fwd_host or host,
            fwd_proto if fwd_proto in ("http", "https") else scheme,
        )

    def _forwarded_for(self, request: web.Request, socket_addr: str) -> str:
        # Walk right to left: the first hop that is not one of our proxies is the client.
        hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",") if h.strip()]
        for hop in reversed(hops):
            if not _is_ip(hop):
                return socket_addr
            if not self._is_trusted(hop):
                return hop
        return hops[0] if hops else socket_addr

    def _is_trusted(self, address: str) -> bool:
        if not self._trusted:
            # The common case, and on every request: no address parsing when nothing is trusted.
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._trusted)


def _socket_address(request: web.Request) -> str:
    transport = request.transport
    peername = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peername, (tuple, list)) and peername:
        return str(peername[0])
    return "unknown"


def _last(value: str) -> str:
    return value.rsplit(",", 1)[-1].strip()


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
