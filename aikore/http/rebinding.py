"""The DNS-rebinding guard: AiKore answers state changes only under Host names it knows as its own.

Any web page can make its own host name (``rebind.attacker.example``) resolve to AiKore's address
and then talk to AiKore as a same-origin page: the browser lets it, and the request's Host and
Origin still name ``rebind.attacker.example``. So every request that changes state or opens a
websocket must name an allowed host in its Host (and in its Origin, when it has one); without
auth (``--no-auth``), where nothing else protects even reading, every request must.

Allowed by default: loopback names (``localhost``, ``*.localhost``, loopback addresses), this
machine's own names and addresses, and any IP address in Host (an address cannot be rebound:
the page is then really served from it); ``--allowed-hosts`` adds names. An AiKore without auth
that listens on loopback only answers loopback names and the names it was given, nothing else.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import socket
from collections.abc import Iterable

from aikore.config import Settings
from aikore.http.origin import authority, authority_of_host

log = logging.getLogger(__name__)


def guards(settings: Settings) -> bool:
    """Whether this AiKore answers only loopback (and listed) names: auth off, listening on loopback."""
    return settings.auth == "none" and is_loopback(settings.host)


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP address (brackets allowed)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_is_loopback(host_header: str) -> bool:
    """True when a Host header value names this machine's loopback interface."""
    found = authority_of_host(host_header)
    return found is not None and _is_loopback_name(_bare(found[0]))


class AllowedHosts:
    """The host names AiKore answers to: ``allows_host`` for Host, ``allows_origin`` for Origin."""

    def __init__(self, extra: Iterable[str] = (), *, own: Iterable[str] = (), loopback_only: bool = False) -> None:
        entries = {_bare(e) for e in extra}
        self._any = "*" in entries
        self._names = frozenset(e for e in entries if not e.startswith("."))
        self._suffixes = tuple(e for e in entries if e.startswith("."))
        # Loopback-only: names of this machine and bare addresses do not reach a loopback socket
        # from a browser anyway, except through rebinding.
        self._own = frozenset() if loopback_only else frozenset(_bare(n) for n in own)
        self._any_address = not loopback_only
        # Each check runs per state-changing request; a client uses one or two Host values.
        self.allows_host = functools.lru_cache(maxsize=256)(self._allows_host)
        self.allows_origin = functools.lru_cache(maxsize=256)(self._allows_origin)

    @classmethod
    def for_settings(cls, settings: Settings) -> AllowedHosts:
        loopback_only = guards(settings)
        own = () if loopback_only else machine_names()
        return cls(settings.allowed_hosts, own=own, loopback_only=loopback_only)

    def _allows_host(self, host_header: str) -> bool:
        """The Host header names an allowed host (any port)."""
        found = authority_of_host(host_header)
        if found is None:
            return False
        host = _bare(found[0])
        return self._listed(host) or (self._any_address and _is_address(host))

    def _allows_origin(self, origin: str, host_header: str, forwarded_host: str) -> bool:
        """The page ``origin`` (an Origin or Referer URL) is on this host or an allowed one.

        An IP address counts only as the request's own host or one of this machine's: a page
        served from some other address is a foreign site, not a rebound name.
        """
        found = authority(origin)
        if found is None:
            return False
        host = _bare(found[0])
        same = {_bare(a[0]) for a in (authority_of_host(host_header), authority_of_host(forwarded_host)) if a}
        return host in same or self._listed(host)

    def _listed(self, host: str) -> bool:
        if self._any or _is_loopback_name(host) or host in self._names or host in self._own:
            return True
        return any(host.endswith(suffix) or host == suffix[1:] for suffix in self._suffixes)


def machine_names() -> frozenset[str]:
    """This machine's host name and the addresses of its interfaces (never a DNS look-up)."""
    names = {socket.gethostname()}
    names.add(next(iter(names)).split(".", 1)[0])
    try:
        import psutil

        for addresses in psutil.net_if_addrs().values():
            names.update(a.address.split("%", 1)[0] for a in addresses if a.family in (socket.AF_INET, socket.AF_INET6))
    except (ImportError, OSError) as exc:  # pragma: no cover - a sandbox without /proc or /sys
        log.warning("cannot list this machine's addresses for the Host allowlist: %s", exc)
    return frozenset(_bare(n) for n in names if n)


def _bare(host: str) -> str:
    """A host name compared as written by browsers: lower case, no brackets, no trailing dot."""
    return host.lower().strip("[]").rstrip(".")


def _is_loopback_name(host: str) -> bool:
    return is_loopback(host) or host.endswith(".localhost")


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
