"""Which page a request comes from: the Origin (or Referer) check against cross-site requests.

Cookies are per host, not per port, so AiKore's session cookie also reaches every instance's
public port, and the browser attaches it to any request a page elsewhere makes to AiKore. A state
change or websocket the cookie authenticates must therefore carry the Origin (or Referer) of the
very host:port it is sent to.
"""

from __future__ import annotations

from yarl import URL

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Authority = tuple[str, int | None]


def claimed_origin(origin: str | None, referer: str | None) -> str | None:
    """The page a browser says the request comes from: its Origin, else its Referer."""
    return origin or referer


def is_foreign(claimed: str | None, host: str) -> bool:
    """True when ``claimed`` (an Origin or Referer URL) names another host:port than ``host``."""
    if claimed is None:
        return False
    theirs = authority(claimed)
    return theirs is None or theirs != authority_of_host(host)


def authority(url_text: str) -> Authority | None:
    """``(host, port as written)`` of an absolute URL, or None for anything else."""
    # Ports are compared as written: browsers leave default ports out of Origin and Host alike,
    # and comparing without the scheme keeps TLS-terminating proxies working.
    try:
        url = URL(url_text)
        host = url.raw_host
        return (host.lower(), url.explicit_port) if url.absolute and host else None
    except ValueError:
        return None


def authority_of_host(host_header: str) -> Authority | None:
    """The authority a Host header value names, or None when it names none."""
    return authority(f"http://{host_header}") if host_header else None
