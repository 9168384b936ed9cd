"""The gate's decision for one request: a pure function of what the request says.

Everything AiKore serves needs credentials except its open routes (``/api/health``, the login
page and its assets, login and logout): the gate is closed by default, so a route added later is
protected without anyone remembering to. Credentials, checked in this order:

1. the ``aikore_session`` cookie (HttpOnly, SameSite=Lax) a browser got by logging in;
2. ``Authorization: Bearer <token>`` (scripts, Prometheus);
3. ``?token=<token>`` (the printed login URL): on a page it becomes a session cookie and a
   redirect to the same URL without the token, so the token does not linger in history.

Before credentials: a request that changes state or opens a websocket must name an allowed host
in Host and Origin (``aikore.http.rebinding``; without auth every request must), and one from a
page of another origin must not reach AiKore's own endpoints (``aikore.http.origin``). After them:
what the session cookie authenticates must come from the page it is meant for.

Every entry point (the main port, each public port, websocket upgrades on either) goes through
the gate (``aikore.http.gate``), which describes the request as :class:`RequestFacts` and follows
what :func:`authorize` returns; it has no rules of its own. ``authorize`` changes nothing: it
reads the sessions, the token and the login limiter, and leaves counting a wrong token and setting
a cookie to its caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from aiohttp import hdrs
from yarl import URL

from aikore.errors import AikoreError
from aikore.http.auth import Auth
from aikore.http.credentials import TooManyAttempts
from aikore.http.forwarded import Peer
from aikore.http.identity import ANONYMOUS, NO_AUTH, Identity
from aikore.http.origin import UNSAFE_METHODS, authority_of_host, claimed_origin, is_foreign
from aikore.paths import is_api, is_proxied

_PAGE_METHODS = frozenset({"GET", "HEAD"})
# Identities are immutable: these are shared rather than built for every request.
_BY_TOKEN = Identity("token")
_BY_QUERY_TOKEN = Identity("token", from_query=True)


# Immutable like a frozen dataclass, but built several times faster: the gate makes one for every
# request.
class RequestFacts(NamedTuple):
    """What the gate looks at in a request, already read out of it."""

    method: str
    # Decoded, as the router matched it: what the request is for (API, page, instance).
    path: str
    # Raw path and query, as sent: where redirects send the browser back to.
    path_qs: str
    # The Host header as received (the rebinding guard's; never a proxy's X-Forwarded-Host).
    host: str
    origin: str | None
    referer: str | None
    session_cookie: str | None
    bearer: str | None
    query_token: str | None
    # A websocket handshake.
    upgrade: bool
    # Accept names text/html: a browser navigating, which gets the login page rather than a 401.
    wants_html: bool
    # A route anyone may reach on the dashboard port (health, login); none is, on a public port.
    open_route: bool
    # On an instance's public port, where everything belongs to the instance.
    public_port: bool
    peer: Peer
    # For a state change or websocket to /app/<name>/ or /desktop/<name>/ on the main port: that
    # instance's public port, whose pages may send it too (None: it has none, or not looked up).
    instance_public_port: int | None = None


@dataclass(frozen=True, slots=True)
class Allow:
    """Let the request through as ``identity``."""

    identity: Identity
    # It goes on to an instance, which must never see AiKore's own cookie or token.
    strip_credentials: bool = False


@dataclass(frozen=True, slots=True)
class Refuse:
    """Answer with ``error`` (401, 403 or 429)."""

    error: AikoreError
    # A wrong token was presented: the caller counts it against the client's address.
    failed_token: bool = False


@dataclass(frozen=True, slots=True)
class Redirect:
    """Send the browser to ``location`` (the login page, or the same URL without ``?token=``)."""

    location: str
    # The ``?token=`` was right: the caller sets a new session's cookie on the redirect.
    open_session: bool = False
    failed_token: bool = False


Decision = Allow | Refuse | Redirect


def authorize(facts: RequestFacts, auth: Auth) -> Decision:
    """Allow, refuse or redirect the request ``facts`` describes; reads ``auth``, changes nothing."""
    guarded = facts.upgrade or facts.method in UNSAFE_METHODS
    claimed = claimed_origin(facts.origin, facts.referer)
    if (guarded or not auth.enabled) and not auth.hosts.allows_host(facts.host):
        return Refuse(_forbidden("Host not allowed: AiKore answers this request only under its own names; "
                                 "add the name with --allowed-hosts (AIKORE_ALLOWED_HOSTS)"))
    if guarded and claimed is not None and not auth.hosts.allows_origin(claimed, facts.host, facts.peer.host):
        return Refuse(_forbidden("request refused: it comes from a page whose host is not allowed "
                                 "(--allowed-hosts)"))
    proxied = facts.public_port or is_proxied(facts.path)
    # Before credentials: a foreign page must not even reach the login endpoints.
    if not proxied and facts.method in UNSAFE_METHODS and is_foreign(claimed, facts.peer.host):
        return Refuse(_forbidden("cross-origin request refused: it must come from the AiKore dashboard"))
    identity = _identify(facts, auth)
    if not isinstance(identity, Identity):
        return identity
    if identity.via == "session" and guarded and not _origin_allows(facts, claimed, proxied):
        return Refuse(_forbidden("request refused: its origin is not this AiKore page"))
    if identity.from_query and _is_page(facts):
        # Same path and query minus the token, relative to this host so it stays on the same port.
        return Redirect(_without_token(facts.path_qs), open_session=True)
    return Allow(identity, strip_credentials=proxied and auth.enabled)


def _identify(facts: RequestFacts, auth: Auth) -> Identity | Refuse | Redirect:
    if not auth.enabled:
        return NO_AUTH
    session = auth.sessions.from_cookie(facts.session_cookie)
    if session is not None:
        return Identity("session", session)
    if facts.open_route and not facts.public_port:
        return ANONYMOUS
    token = facts.bearer if facts.bearer is not None else facts.query_token
    if token is None:
        return _unauthenticated(facts, auth)
    # While an address is over the limit even the right token is refused: no oracle.
    wait = auth.limiter.retry_after(facts.peer.address)
    if wait is not None:
        return Refuse(TooManyAttempts(wait))
    if not auth.credentials.token_matches(token):
        return _unauthenticated(facts, auth, failed_token=True)
    return _BY_TOKEN if facts.bearer is not None else _BY_QUERY_TOKEN


def _unauthenticated(facts: RequestFacts, auth: Auth, *, failed_token: bool = False) -> Refuse | Redirect:
    if facts.wants_html and _is_page(facts):
        return Redirect(_login_location(facts, auth, failed_token=failed_token), failed_token=failed_token)
    error = AikoreError(
        "unauthorized", "authentication required: log in, or send 'Authorization: Bearer <token>'", 401,
        headers={hdrs.WWW_AUTHENTICATE: 'Bearer realm="AiKore"'},
    )
    return Refuse(error, failed_token=failed_token)


def _origin_allows(facts: RequestFacts, claimed: str | None, proxied: bool) -> bool:
    """The cookie rides along with any request the browser makes to this host (any port), so a
    state change or websocket it authenticates must come from the page it is meant for: AiKore's
    own origin for AiKore and /app/<name>/ (or that instance's public port), the public port
    itself on a public port."""
    if claimed is None:
        # AiKore's own endpoints insist on an Origin/Referer; apps' may be called without one.
        return proxied
    if not is_foreign(claimed, facts.peer.host):
        return True
    port = facts.instance_public_port
    if facts.public_port or port is None:
        return False
    hostname = authority_of_host(facts.peer.host)
    return hostname is not None and not is_foreign(claimed, _with_port(hostname[0], port))


def _is_page(facts: RequestFacts) -> bool:
    """A page load rather than a websocket or an API call (scripts with ``?token=`` get answers)."""
    api = not facts.public_port and is_api(facts.path)
    return facts.method in _PAGE_METHODS and not facts.upgrade and not api


def _login_location(facts: RequestFacts, auth: Auth, *, failed_token: bool = False) -> str:
    # A wrong ?token= is said on the login page and never kept in where to come back to.
    back = _without_token(facts.path_qs) if failed_token else facts.path_qs
    reason = {"reason": "token"} if failed_token else {}
    if not facts.public_port:
        return str(URL("/login").with_query(next=back, **reason))
    # The login page lives on the dashboard port of the same host; come back here afterwards.
    peer = facts.peer
    here = f"{peer.scheme}://{peer.host}{back}"
    hostname = URL(f"//{peer.host}").raw_host or "127.0.0.1"
    if ":" in hostname:
        hostname = f"[{hostname}]"
    return str(URL(f"{peer.scheme}://{hostname}:{auth.settings.port}/login").with_query(next=here, **reason))


def _without_token(path_qs: str) -> str:
    path, _, query = path_qs.partition("?")
    return str(URL.build(path=path, query_string=query, encoded=True).without_query_params("token"))


def _with_port(hostname: str, port: int) -> str:
    return f"[{hostname}]:{port}" if ":" in hostname else f"{hostname}:{port}"


def _forbidden(message: str) -> AikoreError:
    return AikoreError("forbidden", message, 403)
