"""The DNS-rebinding guard: without auth, a loopback-only AiKore answers only to loopback names.

``--no-auth`` on 127.0.0.1 trusts everyone who can reach the port, which is the local user. But
any web page can make its own host name (``evil.example``) resolve to 127.0.0.1 and then talk to
AiKore as a same-origin page; the Host header it sends still names ``evil.example``.
"""

from __future__ import annotations

import functools
import ipaddress

from aikore.config import Settings
from aikore.http.origin import authority_of_host


def guards(settings: Settings) -> bool:
    """Whether this AiKore refuses non-loopback Host names (auth off, listening on loopback)."""
    return settings.auth == "none" and is_loopback(settings.host)


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP address (brackets allowed)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@functools.lru_cache(maxsize=256)
def host_is_loopback(host_header: str) -> bool:
    """True when a Host header value names this machine's loopback interface."""
    # Cached: it runs on every request without auth, and a client uses one or two Host values.
    authority = authority_of_host(host_header)
    if authority is None:
        return False
    host = authority[0]
    return is_loopback(host) or host.endswith(".localhost")
