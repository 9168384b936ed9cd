"""In-process reverse proxy for AiKore instances: path routes, public ports, HTTP and websockets.

Standalone: nothing here imports aikore. The host application owns one RouteTable and one
ClientSession, mounts path_handler under /app, and keeps PublicListeners in sync.
"""

from .client import SERVER_HANDLER_ARGS, client_session
from .dispatch import APP_PREFIX, Handler, add_app_routes, path_handler, port_handler
from .headers import SCRUB, DirectPeer, PeerFn, PeerInfo, Scrub, direct_peer
from .heads import HEAD_TIMEOUT, MAX_HEAD, GuardedRunner, HeadGuard
from .listeners import PublicListeners
from .table import KEEP_PREFIX, MODES, PORT_ONLY, STRIP_PREFIX, Route, RouteTable
from .upstream import UpstreamConnectError, UpstreamError, UpstreamPool

__all__ = [
    "APP_PREFIX",
    "HEAD_TIMEOUT",
    "KEEP_PREFIX",
    "MAX_HEAD",
    "MODES",
    "PORT_ONLY",
    "SCRUB",
    "SERVER_HANDLER_ARGS",
    "STRIP_PREFIX",
    "DirectPeer",
    "GuardedRunner",
    "Handler",
    "HeadGuard",
    "PeerFn",
    "PeerInfo",
    "PublicListeners",
    "Route",
    "RouteTable",
    "Scrub",
    "UpstreamConnectError",
    "UpstreamError",
    "UpstreamPool",
    "add_app_routes",
    "client_session",
    "direct_peer",
    "path_handler",
    "port_handler",
]
