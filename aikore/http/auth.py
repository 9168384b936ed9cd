"""Authentication: the token, the optional password, browser sessions, and the one gate in front.

Everything AiKore serves needs credentials except ``/api/health``, the login page (and its
assets) and the login/logout endpoints; the gate is closed by default, so a route added later
is protected without anyone remembering to. Credentials, checked in this order:

1. the ``aikore_session`` cookie (HttpOnly, SameSite=Lax) a browser got by logging in;
2. ``Authorization: Bearer <token>`` (scripts, Prometheus);
3. ``?token=<token>`` (the printed login URL): on a page it becomes a session cookie and a
   redirect to the same URL without the token, so the token does not linger in history.

Cookies are per host, not per port, so the cookie also reaches every instance's public port.
A page served there must not drive the API with it: state-changing dashboard/API requests and
websocket upgrades that ride on the cookie must carry the Origin (or Referer) of the very
host:port they are sent to.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from aikore import keys
from aikore.config import Settings
from aikore.errors import AikoreError, render
from aikore.http.forwarded import Forwarded, Peer
from aikore.http.ratelimit import LoginLimiter
from aikore.paths import is_api, is_proxied

log = logging.getLogger(__name__)

COOKIE_NAME = "aikore_session"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Routes anyone may reach, by the route's canonical path (what the router matched, not the raw
# URL, so no spelling of a path can make a protected route look open).
OPEN_ROUTES = frozenset({"/api/health", "/login", "/logout", "/api/auth/login", "/api/auth/logout"})
# Static files the login page may use; one path segment only, so ``login/../x`` cannot match.
OPEN_STATIC = re.compile(r"^(login|favicon)[A-Za-z0-9_.-]*$")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
_MAX_COOKIE = 256



class TooManyAttempts(AikoreError):
    """The client address is over the failed-login limit: 429 with Retry-After."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "too_many_requests", f"too many failed login attempts; retry in {retry_after} s", 429,
            headers={hdrs.RETRY_AFTER: str(retry_after)},
        )
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Session:
    """A browser login: an id (for logout), when it ends, and the signed cookie value."""

    id: str
    expires_at: float
    cookie: str


@dataclass(frozen=True, slots=True)
class Identity:
    """How a request proved itself: ``session``, ``token``, ``none`` (auth off) or ``anonymous``."""

    via: str
    session: Session | None = None
    from_query: bool = False


IDENTITY = web.RequestKey("aikore_identity", Identity)
ANONYMOUS = Identity("anonymous")


class Auth:
    """Holds the credentials and checks them; the gate and the login views ask it."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        limiter: LoginLimiter | None = None,
    ) -> None:
        self.settings = settings
        self.mode = settings.auth
        self.ttl = settings.session_ttl
        self.forwarded = Forwarded(settings.trusted_proxies)
        self.limiter = limiter or LoginLimiter()
        self._clock = clock
        self._token: str | None = None
        self._password: tuple[bytes, bytes] | None = None
        self._signing_key = b""
        self._revoked: dict[str, float] = {}

    @property
    def enabled(self) -> bool:
        return self.mode != "none"

    @property
    def token(self) -> str:
        if self._token is None:
            raise RuntimeError("auth is not loaded")
        return self._token

    def load(self) -> None:
        """Read or create the token and session key under the data dir; hash the password."""
        if not self.enabled:
            return
        data = self.settings.data_dir
        self._token = self.settings.token or _read_or_create_secret(self.settings.token_path)
        if self.settings.token and len(self.settings.token) < 16:
            log.warning("the --token/AIKORE_TOKEN value is short (%d characters); use 16 or more",
                        len(self.settings.token))
        if self.settings.password:
            salt = secrets.token_bytes(16)
            self._password = (salt, _scrypt(self.settings.password, salt))
        secret = _read_or_create_secret(data / "session.key").encode()
        # Bound to the credentials: changing the token or password ends every existing session.
        # (The password's hash above is salted afresh each start, so it cannot serve here.)
        password = (self.settings.password or "").encode("utf-8", errors="surrogatepass")
        fingerprint = hashlib.sha256(self.token.encode()).digest() + hashlib.sha256(password).digest()
        self._signing_key = hmac.new(secret, b"aikore-session-v1\0" + fingerprint, hashlib.sha256).digest()
        self._revoked = _load_revoked(self._revoked_path, self._clock())

    # -- credentials -------------------------------------------------------------------------

    def token_matches(self, candidate: str) -> bool:
        return self._token is not None and hmac.compare_digest(candidate.encode(), self._token.encode())

    def password_matches(self, candidate: str) -> bool:
        if self._password is None:
            return False
        salt, expected = self._password
        return hmac.compare_digest(_scrypt(candidate, salt), expected)

    async def verify(self, address: str, *, token: str | None = None, password: str | None = None) -> bool:
        """Check a token or password from ``address``, counting failures; raises TooManyAttempts."""
        wait = self.limiter.retry_after(address)
        if wait is not None:
            raise TooManyAttempts(wait)
        ok = False
        if token is not None:
            ok = self.token_matches(token)
        elif password is not None and self._password is not None:
            # scrypt takes tens of milliseconds on purpose; keep the event loop free meanwhile.
            ok = await asyncio.to_thread(self.password_matches, password)
        if not ok:
            self.limiter.fail(address)
            log.warning("failed login from %s", address)
        return ok

    # -- sessions ----------------------------------------------------------------------------

    def open_session(self) -> Session:
        sid = secrets.token_urlsafe(18)
        expires = int(self._clock() + self.ttl)
        payload = f"{sid}.{expires}"
        return Session(sid, float(expires), f"{payload}.{self._sign(payload)}")

    def session_from_cookie(self, value: str | None) -> Session | None:
        """The session a cookie value stands for, if it is ours, unexpired and not logged out."""
        if not value or len(value) > _MAX_COOKIE or not self._signing_key:
            return None
        parts = value.split(".")
        if len(parts) != 3 or not (parts[1].isascii() and parts[1].isdigit()):
            return None
        sid, expires_text, signature = parts
        if not hmac.compare_digest(signature.encode(), self._sign(f"{sid}.{expires_text}").encode()):
            return None
        expires = float(expires_text)
        if expires <= self._clock() or sid in self._revoked:
            return None
        return Session(sid, expires, value)

    def revoke(self, session: Session) -> None:
        """Log a session out for good (kept on disk until it would have expired anyway)."""
        now = self._clock()
        self._revoked = {sid: exp for sid, exp in self._revoked.items() if exp > now}
        self._revoked[session.id] = session.expires_at
        _write_private(self._revoked_path, json.dumps(self._revoked))

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._signing_key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    @property
    def _revoked_path(self) -> Path:
        return self.settings.data_dir / "sessions-revoked.json"

    # -- identifying a request ---------------------------------------------------------------

    async def identify(self, request: web.Request, peer: Peer, *, credentials: bool = True) -> Identity | None:
        """Who the request is, or None; wrong tokens count toward the limit (TooManyAttempts)."""
        if not self.enabled:
            return Identity("none")
        session = self.session_from_cookie(request.cookies.get(COOKIE_NAME))
        if session is not None:
            return Identity("session", session)
        if not credentials:
            return None
        bearer = _bearer(request)
        if bearer is not None:
            return Identity("token") if await self.verify(peer.address, token=bearer) else None
        query_token = request.rel_url.query.get("token")
        if query_token is not None:
            return Identity("token", from_query=True) if await self.verify(peer.address, token=query_token) else None
        return None

    def set_cookie(self, response: web.StreamResponse, session: Session, peer: Peer) -> None:
        response.set_cookie(
            COOKIE_NAME,
            session.cookie,
            max_age=int(self.ttl),
            path="/",
            httponly=True,
            samesite="Lax",
            secure=peer.scheme == "https",
        )

    def clear_cookie(self, response: web.StreamResponse) -> None:
        response.del_cookie(COOKIE_NAME, path="/")

    # -- what is printed at startup ----------------------------------------------------------

    def startup_message(self, dashboard_url: str) -> str | None:
        if self.mode == "token":
            return f"AiKore login URL: {dashboard_url}?token={quote(self.token, safe='')}"
        if self.mode == "password":
            where = "--token/AIKORE_TOKEN" if self.settings.token else str(self.settings.token_path)
            return (f"AiKore login: {dashboard_url}login with AIKORE_PASSWORD; "
                    f"scripts use 'Authorization: Bearer <token>' (token in {where})")
        if not is_loopback(self.settings.host):
            bar = "!" * 78
            return (f"{bar}\n!! WARNING: authentication is OFF (--no-auth) and AiKore listens on "
                    f"{self.settings.host}.\n!! Anyone who can reach this port can run any command on "
                    f"this machine.\n!! Use --no-auth only behind a trusted network or proxy that "
                    f"authenticates.\n{bar}")
        return "AiKore: authentication is off (--no-auth); listening on loopback only"


# -- the gate ------------------------------------------------------------------------------------


def gate(auth: Auth, *, public_port: bool = False) -> Middleware:
    """The auth middleware; ``public_port`` for an instance's own listener (all of it protected)."""

    # Without auth, a loopback-only AiKore is still reachable from any web page through DNS
    # rebinding (evil.example resolving to 127.0.0.1): only loopback Host names are served then.
    guard_rebinding = not auth.enabled and is_loopback(auth.settings.host)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if guard_rebinding and not _host_is_loopback(request.host):
            return _forbidden("Host not allowed: with --no-auth AiKore answers only to localhost names")
        peer = auth.forwarded.peer(request)
        proxied = public_port or is_proxied(request.path)
        # Before anything else: a foreign page must not even reach the login endpoints.
        if not proxied and request.method in UNSAFE_METHODS and _origin_is_foreign(request, peer):
            return _forbidden("cross-origin request refused: it must come from the AiKore dashboard")
        is_open = not public_port and _is_open_route(request)
        try:
            identity = await auth.identify(request, peer, credentials=not is_open)
        except TooManyAttempts as exc:
            return render(exc)
        if identity is None and not is_open:
            return _refuse(request, auth, peer, public_port)
        identity = identity or ANONYMOUS
        if not _origin_allows(request, peer, identity, proxied):
            return _forbidden("request refused: its origin is not this AiKore page")
        request[IDENTITY] = identity
        if _is_token_url(request, identity, public_port):
            return _drop_token_redirect(request, auth, peer)
        if proxied and auth.enabled:
            request = _without_aikore_credentials(request, auth)
        return await handler(request)

    return middleware


def _origin_allows(request: web.Request, peer: Peer, identity: Identity, proxied: bool) -> bool:
    """The cookie rides along with any request the browser makes to this host (any port), so
    a state change or websocket it authenticates must come from this very origin."""
    guarded = _is_upgrade(request) or (not proxied and request.method in UNSAFE_METHODS)
    if identity.via != "session" or not guarded:
        return True
    if _origin_is_foreign(request, peer):
        return False
    # AiKore's own endpoints insist on an Origin/Referer; apps' websockets may come without one.
    return proxied or _has_origin(request)


def _is_token_url(request: web.Request, identity: Identity, public_port: bool) -> bool:
    """A page opened from the printed ``?token=`` URL: trade the token for a cookie and hide it.

    API calls with ``?token=`` (scripts that cannot set headers) are answered directly."""
    return (identity.from_query and request.method in ("GET", "HEAD") and not _is_upgrade(request)
            and not _is_api(request, public_port))


def _refuse(request: web.Request, auth: Auth, peer: Peer, public_port: bool) -> web.StreamResponse:
    if _wants_page(request, public_port):
        return _redirect(_login_location(request, auth, peer, public_port))
    return render(AikoreError(
        "unauthorized", "authentication required: log in, or send 'Authorization: Bearer <token>'", 401,
        headers={hdrs.WWW_AUTHENTICATE: 'Bearer realm="AiKore"'},
    ))


def _login_location(request: web.Request, auth: Auth, peer: Peer, public_port: bool) -> str:
    if not public_port:
        return str(URL("/login").with_query(next=request.rel_url.raw_path_qs))
    # The login page lives on the dashboard port of the same host; come back here afterwards.
    here = f"{peer.scheme}://{peer.host}{request.rel_url.raw_path_qs}"
    hostname = URL(f"//{peer.host}").raw_host or "127.0.0.1"
    if ":" in hostname:
        hostname = f"[{hostname}]"
    return str(URL(f"{peer.scheme}://{hostname}:{auth.settings.port}/login").with_query(next=here))


def _drop_token_redirect(request: web.Request, auth: Auth, peer: Peer) -> web.StreamResponse:
    # Same path and query minus the token, relative to this host so it stays on the same port.
    target = request.rel_url.without_query_params("token")
    resp = _redirect(str(target))
    auth.set_cookie(resp, auth.open_session(), peer)
    return resp


def _without_aikore_credentials(request: web.Request, auth: Auth) -> web.Request:
    """The request minus AiKore's own cookie and bearer token, so instances never see them."""
    headers = strip_aikore_credentials(auth, request.headers)
    return request if headers is request.headers else request.clone(headers=headers)


def strip_aikore_credentials(
    auth: Auth, headers: CIMultiDictProxy[str]
) -> CIMultiDictProxy[str] | CIMultiDict[str]:
    """``headers`` without AiKore's session cookie and bearer token (the same object if neither)."""
    cookies = headers.getall(hdrs.COOKIE, [])
    bearer = bearer_of(headers)
    ours = bearer is not None and auth.token_matches(bearer)
    if not ours and not any(COOKIE_NAME in c for c in cookies):
        return headers
    out = CIMultiDict(headers)
    out.popall(hdrs.COOKIE, None)
    kept = [c.strip() for line in cookies for c in line.split(";")
            if c.strip() and c.split("=", 1)[0].strip() != COOKIE_NAME]
    if kept:
        out[hdrs.COOKIE] = "; ".join(kept)
    if ours:
        del out[hdrs.AUTHORIZATION]
    return out


def _is_open_route(request: web.Request) -> bool:
    route = request.match_info.route
    resource = route.resource
    if resource is None:
        return False
    if resource.canonical in OPEN_ROUTES:
        return True
    if isinstance(resource, web.StaticResource):
        return bool(OPEN_STATIC.fullmatch(request.match_info.get("filename", "")))
    return False


def _is_upgrade(request: web.Request) -> bool:
    return "websocket" in request.headers.get(hdrs.UPGRADE, "").lower()


def _wants_page(request: web.Request, public_port: bool) -> bool:
    """A browser navigating to a page (gets the login page) rather than a script or stream (401)."""
    if request.method not in ("GET", "HEAD") or _is_upgrade(request):
        return False
    if _is_api(request, public_port):
        return False
    return "text/html" in request.headers.get(hdrs.ACCEPT, "")


def _is_api(request: web.Request, public_port: bool) -> bool:
    return not public_port and is_api(request.path)


def _bearer(request: web.Request) -> str | None:
    return bearer_of(request.headers)


def bearer_of(headers: CIMultiDictProxy[str]) -> str | None:
    scheme, _, value = headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _has_origin(request: web.Request) -> bool:
    return hdrs.ORIGIN in request.headers or hdrs.REFERER in request.headers


def _origin_is_foreign(request: web.Request, peer: Peer) -> bool:
    """True when the Origin (or, lacking it, the Referer) names another scheme-less host:port."""
    claimed = request.headers.get(hdrs.ORIGIN) or request.headers.get(hdrs.REFERER)
    if claimed is None:
        return False
    return _authority(claimed) != _authority_of_host(peer.host) or _authority(claimed) is None


@functools.lru_cache(maxsize=256)
def _host_is_loopback(host_header: str) -> bool:
    # Cached: it runs on every request without auth, and a client uses one or two Host values.
    authority = _authority_of_host(host_header)
    if authority is None:
        return False
    host = authority[0]
    return is_loopback(host) or host.endswith(".localhost")


def _authority(url_text: str) -> tuple[str, int | None] | None:
    # Ports are compared as written: browsers leave default ports out of Origin and Host alike,
    # and comparing without the scheme keeps TLS-terminating proxies working.
    try:
        url = URL(url_text)
        host = url.raw_host
        return (host.lower(), url.explicit_port) if url.absolute and host else None
    except ValueError:
        return None


def _authority_of_host(host_header: str) -> tuple[str, int | None] | None:
    return _authority(f"http://{host_header}") if host_header else None


def _redirect(location: str) -> web.Response:
    # Never cached: the answer depends on the credentials the browser sent.
    return web.Response(status=302, headers={hdrs.LOCATION: location, hdrs.CACHE_CONTROL: "no-store"})


def _forbidden(message: str) -> web.Response:
    return render(AikoreError("forbidden", message, 403))


# -- wiring --------------------------------------------------------------------------------------


def setup_auth(app: web.Application, auth: Auth) -> None:
    """Register the credentials' cleanup context and the login line printed at startup."""
    app[keys.AUTH] = auth
    app[keys.STARTUP_MESSAGES].append(auth.startup_message)


async def auth_ctx(app: web.Application) -> AsyncIterator[None]:
    """Loads the token, password hash and session key; needs the data dir to exist."""
    app[keys.AUTH].load()
    yield


def public_port_middlewares(app: web.Application) -> list[Middleware]:
    """What every instance public-port listener runs: the same gate, with no open routes."""
    return [gate(app[keys.AUTH], public_port=True)]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# -- files ---------------------------------------------------------------------------------------


def _read_or_create_secret(path: Path) -> str:
    """The secret kept in ``path`` (created once, mode 600); an existing file is made private."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        text = ""
    if text:
        if path.stat().st_mode & 0o077:
            log.warning("%s was readable by others; making it private (mode 600)", path)
            path.chmod(0o600)
        return text
    secret = secrets.token_urlsafe(32)
    _write_private(path, secret + "\n")
    return secret


def _write_private(path: Path, text: str) -> None:
    # Created 600 from the start (no window where another user can read it), then moved in.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _load_revoked(path: Path, now: float) -> dict[str, float]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float)) and v > now}


def _scrypt(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode("utf-8", errors="surrogatepass"), salt=salt, **_SCRYPT)
