"""What a request path belongs to: an instance (proxied), AiKore's JSON API, or the dashboard.

One definition each, used by the gate, the error renderer and the security headers alike.
"""

from __future__ import annotations

# Paths whose responses belong to an instance, not to AiKore.
PROXIED_PREFIXES = ("/app/", "/desktop/")
_PROXIED_EXACT = frozenset({"/app", "/desktop"})


def is_proxied(path: str) -> bool:
    """``/app/<name>/...`` and ``/desktop/<name>/...`` (and the bare prefixes): an instance answers."""
    return path.startswith(PROXIED_PREFIXES) or path in _PROXIED_EXACT


def is_api(path: str) -> bool:
    """AiKore's machine-readable endpoints: errors there are JSON."""
    return path.startswith("/api/") or path == "/metrics"
