"""Login, logout and session info: the JSON endpoints under /api/auth and the /login page.

The page posts a plain HTML form (no script, so the dashboard CSP needs no exception); the JSON
endpoints do the same for the dashboard's own code and for scripts that want a cookie.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import aiohttp_jinja2
from aiohttp import hdrs, web
from yarl import URL

from aikore import __version__
from aikore.api.common import json_response, read_body, read_json_object, reject_unknown
from aikore.errors import AikoreError, render
from aikore.http import AUTH, Auth
from aikore.http.credentials import TooManyAttempts
from aikore.http.identity import ANONYMOUS, IDENTITY, NO_AUTH, Identity
from aikore.http.security_headers import CONTENT_SECURITY_POLICY

MAX_FORM = 8 * 1024
MAX_NEXT = 2048
MAX_SECRET = 1024
# Why the browser was sent to the login page (?reason=, set by the gate and the dashboard): said on
# the page, so a user knows whether to look for a new token or just log in again.
REASONS = {
    "token": ("error", "The token in that link is not right. Enter the current one, "
              "or use the login URL AiKore printed."),
    "ended": ("notice", "Your session has ended. Log in again."),
    "logged-out": ("notice", "You have logged out."),
    "logged-out-elsewhere": ("notice", "You logged out in another tab or window."),
}


def safe_next(value: object, request: web.Request) -> str:
    """Where to go after login: a path on this site, or one of this host's public ports; else "/"."""
    if not isinstance(value, str) or not value or len(value) > MAX_NEXT:
        return "/"
    if any(ord(c) < 0x20 or c in "\\\x7f" for c in value):
        return "/"
    if value.startswith("/") and not value.startswith("//"):
        return value
    auth: Auth = request.app[AUTH]
    try:
        url = URL(value)
    except ValueError:
        return "/"
    here = URL(f"//{auth.forwarded.peer(request).host}")
    same_host = url.raw_host is not None and here.raw_host is not None and url.raw_host.lower() == here.raw_host.lower()
    if url.scheme in ("http", "https") and same_host and url.explicit_port in auth.settings.public_ports:
        return value
    return "/"


def _identity(request: web.Request) -> Identity:
    return request.get(IDENTITY, ANONYMOUS)


def _session_json(auth: Auth, identity: Identity) -> dict[str, Any]:
    session = identity.session
    expires = datetime.fromtimestamp(session.expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if session else None
    return {
        "mode": auth.mode,
        "authenticated": identity.via in ("session", "token", "none"),
        "via": identity.via,
        "expires_at": expires,
    }


async def _check(request: web.Request, secret: object, kind: str) -> bool:
    auth: Auth = request.app[AUTH]
    if not isinstance(secret, str) or not secret or len(secret) > MAX_SECRET:
        raise AikoreError("invalid_field", f"{kind}: must be a non-empty string of at most {MAX_SECRET} chars", 400)
    address = auth.forwarded.peer(request).address
    if kind == "token":
        return await auth.credentials.verify(address, token=secret)
    return await auth.credentials.verify(address, password=secret)


# -- JSON API ------------------------------------------------------------------------------------


async def api_login(request: web.Request) -> web.Response:
    auth: Auth = request.app[AUTH]
    data = await read_json_object(request)
    reject_unknown(data, {"token", "password"})
    if len(data) != 1:
        raise AikoreError("invalid_field", "send exactly one of token or password", 400)
    if not auth.enabled:
        return json_response(_session_json(auth, NO_AUTH))
    kind, secret = next(iter(data.items()))
    if kind == "password" and auth.mode != "password":
        raise AikoreError(
            "invalid_field", "password: password login is off; set AIKORE_PASSWORD to enable it", 400, field="password",
        )
    try:
        ok = await _check(request, secret, kind)
    except TooManyAttempts as exc:
        return render(exc)
    if not ok:
        raise AikoreError("unauthorized", f"{kind}: wrong {kind}", 401)
    session = auth.sessions.open()
    resp = json_response(_session_json(auth, Identity("session", session)))
    auth.sessions.set_cookie(resp, session, auth.forwarded.peer(request))
    return resp


async def api_logout(request: web.Request) -> web.Response:
    auth: Auth = request.app[AUTH]
    _end_session(request)
    resp = json_response(_session_json(auth, ANONYMOUS))
    auth.sessions.clear_cookie(resp)
    return resp


async def api_session(request: web.Request) -> web.Response:
    return json_response(_session_json(request.app[AUTH], _identity(request)))


def _end_session(request: web.Request) -> None:
    identity = _identity(request)
    if identity.session is not None:
        request.app[AUTH].sessions.revoke(identity.session)


# -- the login page ------------------------------------------------------------------------------


def _page(
    request: web.Request, next_url: str, error: str | None = None, status: int = 200, notice: str | None = None
) -> web.Response:
    auth: Auth = request.app[AUTH]
    context = {"version": __version__, "mode": auth.mode, "next": next_url, "error": error, "notice": notice}
    resp = aiohttp_jinja2.render_template("login.html", request, context, status=status)
    resp.headers[hdrs.CACHE_CONTROL] = "no-store"
    target = URL(next_url)
    if target.absolute:
        # The form's answer redirects to a public port; browsers apply form-action to that hop.
        origin = str(target.origin())
        resp.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
            "form-action 'self'", f"form-action 'self' {origin}"
        )
    return resp


async def login_page(request: web.Request) -> web.StreamResponse:
    auth: Auth = request.app[AUTH]
    next_url = safe_next(request.query.get("next"), request)
    if not auth.enabled or _identity(request).via == "session":
        raise web.HTTPFound(next_url)
    kind, text = REASONS.get(request.query.get("reason", ""), ("", None))
    return _page(request, next_url, error=text if kind == "error" else None, notice=text if kind == "notice" else None)


async def login_form(request: web.Request) -> web.StreamResponse:
    auth: Auth = request.app[AUTH]
    form = await _read_form(request)
    next_url = safe_next(form.get("next"), request)
    if not auth.enabled:
        raise web.HTTPSeeOther(next_url)
    kind = "password" if auth.mode == "password" and "password" in form else "token"
    try:
        ok = await _check(request, form.get(kind), kind)
    except TooManyAttempts as exc:
        resp = _page(request, next_url, f"Too many failed attempts. Try again in {exc.retry_after} seconds.", 429)
        resp.headers[hdrs.RETRY_AFTER] = str(exc.retry_after)
        return resp
    except AikoreError:
        return _page(request, next_url, f"Enter the {kind}.", 400)
    if not ok:
        return _page(request, next_url, f"That {kind} is not right.", 401)
    resp = web.Response(status=303, headers={hdrs.LOCATION: next_url, hdrs.CACHE_CONTROL: "no-store"})
    auth.sessions.set_cookie(resp, auth.sessions.open(), auth.forwarded.peer(request))
    return resp


async def logout_form(request: web.Request) -> web.StreamResponse:
    _end_session(request)
    location = "/login?reason=logged-out"
    resp = web.Response(status=303, headers={hdrs.LOCATION: location, hdrs.CACHE_CONTROL: "no-store"})
    request.app[AUTH].sessions.clear_cookie(resp)
    return resp


async def _read_form(request: web.Request) -> dict[str, str]:
    """A small urlencoded form; anything odd (too big, not UTF-8) is a 400 page, never a 500."""
    if request.content_length is not None and request.content_length > MAX_FORM:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_FORM, actual_size=request.content_length)
    try:
        # All of it, however many TCP pieces it comes in (one read returns only what has arrived).
        raw = await read_body(request, MAX_FORM)
    except AikoreError:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_FORM, actual_size=MAX_FORM + 1) from None
    try:
        fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, errors="strict", max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        raise web.HTTPBadRequest(text="the login form could not be read") from None
    return {k: v[0] for k, v in fields.items()}


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/login", login_page, name="login")
    r.add_post("/login", login_form)
    r.add_post("/logout", logout_form, name="logout")
    r.add_post("/api/auth/login", api_login)
    r.add_post("/api/auth/logout", api_logout)
    r.add_get("/api/auth/session", api_session)


_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


OPENAPI_SCHEMAS: dict[str, Any] = {
    "Session": {
        "type": "object",
        "required": ["mode", "authenticated", "via", "expires_at"],
        "properties": {
            "mode": {"type": "string", "enum": ["token", "password", "none"]},
            "authenticated": {"type": "boolean"},
            "via": {
                "type": "string",
                "enum": ["session", "token", "none", "anonymous"],
                "description": "session: the browser cookie; token: Authorization Bearer; none: auth is off",
            },
            "expires_at": {"type": ["string", "null"], "description": "When the session cookie stops working"},
        },
    },
    "Login": {
        "type": "object",
        "description": "Exactly one of token or password (password only when AIKORE_PASSWORD is set)",
        "additionalProperties": False,
        "minProperties": 1,
        "maxProperties": 1,
        "properties": {
            "token": {"type": "string", "minLength": 1, "maxLength": MAX_SECRET},
            "password": {"type": "string", "minLength": 1, "maxLength": MAX_SECRET},
        },
    },
}

_SESSION = {"$ref": "#/components/schemas/Session"}

OPENAPI_PATHS: dict[str, Any] = {
    "/api/auth/login": {
        "post": {
            "summary": "Log in with the token or password; sets the HttpOnly aikore_session cookie",
            "security": [],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Login"}}},
            },
            "responses": {
                "200": _json("Logged in; the cookie is set", _SESSION),
                "400": _json("Invalid input", _ERROR),
                "401": _json("Wrong token or password", _ERROR),
                "403": _json("Sent from a page that is not the dashboard", _ERROR),
                "413": _json("Body too large", _ERROR),
                "429": _json("Too many failed attempts from this address; see Retry-After", _ERROR),
            },
        }
    },
    "/api/auth/logout": {
        "post": {
            "summary": "End this browser's session (the cookie stops working, here and on disk)",
            "security": [],
            "responses": {
                "200": _json("Logged out", _SESSION),
                "403": _json("Sent from a page that is not the dashboard", _ERROR),
            },
        }
    },
    "/api/auth/session": {
        "get": {
            "summary": "How this request is authenticated, and when its session ends",
            "responses": {"200": _json("Current identity", _SESSION), "401": _json("Not logged in", _ERROR)},
        }
    },
}
