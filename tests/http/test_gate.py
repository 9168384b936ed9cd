"""The gate: every route is closed without credentials; the token, bearer and cookie open it."""

from __future__ import annotations

import re

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from aikore.http.sessions import COOKIE_NAME

from .conftest import TOKEN, bearer, session_cookie

# Reachable with no credentials at all, and nothing else.
OPEN = {("GET", "/api/health"), ("GET", "/login"), ("POST", "/login"), ("POST", "/logout"),
        ("POST", "/api/auth/login"), ("POST", "/api/auth/logout")}


def _concrete(path: str) -> str:
    path = re.sub(r"\{id[^}]*\}", "1", path)
    path = re.sub(r"\{tail[^}]*\}", "sub/page", path)
    return re.sub(r"\{[a-z_]+[^}]*\}", "demo", path)


def _every_route(app: web.Application) -> list[tuple[str, str]]:
    routes: set[tuple[str, str]] = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        if "prefix" in info:  # static files
            routes.add(("GET", f"{info['prefix']}/index.html"))
            continue
        path = info.get("path") or info.get("formatter")
        if path and route.method != "HEAD":
            methods = ["GET", "POST", "PUT", "DELETE"] if route.method == "*" else [route.method]
            routes.update((m, _concrete(path)) for m in methods)
    return sorted(routes)


async def test_every_api_route_without_credentials_is_401_json(client: TestClient) -> None:
    checked = 0
    for method, path in _every_route(client.app):
        if (method, path) in OPEN or not (path.startswith("/api/") or path == "/metrics"):
            continue
        resp = await client.request(method, path, allow_redirects=False)
        assert resp.status == 401, f"{method} {path} answered {resp.status} without credentials"
        body = await resp.json()
        assert body["error"]["code"] == "unauthorized"
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        checked += 1
    assert checked >= 10


async def test_every_page_without_credentials_redirects_a_browser_to_login(client: TestClient) -> None:
    pages = [(m, p) for m, p in _every_route(client.app) if m == "GET" and (m, p) not in OPEN
             and not p.startswith("/api/") and p != "/metrics"]
    assert ("GET", "/") in pages
    for method, path in pages:
        resp = await client.request(method, path, headers={"Accept": "text/html"}, allow_redirects=False)
        assert resp.status == 302, f"{path} answered {resp.status}"
        assert resp.headers["Location"].startswith("/login?next=")


async def test_unknown_paths_are_closed_too(client: TestClient) -> None:
    for path in ("/nope", "/api/nope", "/app", "/static/../aikore.db", "/api/health/../instances"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 401, path


async def test_open_routes_need_no_credentials(client: TestClient) -> None:
    assert (await client.get("/api/health")).status == 200
    login = await client.get("/login")
    assert login.status == 200
    assert 'name="token"' in await login.text()


async def test_login_assets_are_open_but_other_static_files_are_not(client: TestClient) -> None:
    # The login page's stylesheet; only login*/favicon* names are open, nothing with a slash.
    assert (await client.get("/static/login.css")).status == 200
    assert (await client.get("/static/favicon.svg")).status == 200
    assert (await client.get("/static/index.html")).status == 401
    assert (await client.get("/static/login%2F..%2Findex.html")).status in (401, 403, 404)


async def test_websocket_upgrade_without_credentials_is_401(client: TestClient) -> None:
    headers = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Accept": "text/html"}
    for path in ("/api/system/stream", "/app/demo/ws", "/"):
        resp = await client.get(path, headers=headers, allow_redirects=False)
        assert resp.status == 401, path


async def test_event_streams_without_credentials_are_401(client: TestClient) -> None:
    resp = await client.get("/api/system/stream", headers={"Accept": "text/event-stream"})
    assert resp.status == 401


async def test_bearer_token_opens_the_api(client: TestClient) -> None:
    resp = await client.get("/api/instances", headers=bearer())
    assert resp.status == 200
    assert await resp.json() == []
    info = await (await client.get("/api/auth/session", headers=bearer())).json()
    assert info == {"mode": "token", "authenticated": True, "via": "token", "expires_at": None}


@pytest.mark.parametrize("header", [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer ", f"Basic {TOKEN}",
                                    f"bearer  {TOKEN.upper()}"])
async def test_wrong_token_is_refused(client: TestClient, header: str) -> None:
    resp = await client.get("/api/instances", headers={"Authorization": header})
    assert resp.status == 401


async def test_wrong_query_token_is_refused(client: TestClient) -> None:
    resp = await client.get("/api/instances?token=wrong")
    assert resp.status == 401
    resp = await client.get("/?token=wrong", headers={"Accept": "text/html"}, allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"].startswith("/login")
    assert "Set-Cookie" not in resp.headers


async def test_query_token_sets_an_httponly_cookie_and_redirects_without_it(client: TestClient) -> None:
    resp = await client.get(f"/app/demo/page?a=1&token={TOKEN}&b=2", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == "/app/demo/page?a=1&b=2"
    set_cookie = resp.headers["Set-Cookie"]
    assert set_cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in set_cookie
    assert "SameSite=Lax" in set_cookie
    assert "Path=/" in set_cookie
    assert TOKEN not in set_cookie
    cookie = session_cookie(resp.headers)
    ok = await client.get("/api/instances", headers={"Cookie": f"{COOKIE_NAME}={cookie}"})
    assert ok.status == 200


async def test_query_token_on_the_api_answers_directly(client: TestClient) -> None:
    # Scripts that cannot set headers (curl one-liners, websockets) use ?token= without a redirect.
    resp = await client.get(f"/api/instances?token={TOKEN}", allow_redirects=False)
    assert resp.status == 200
    assert "Set-Cookie" not in resp.headers


async def test_root_token_url_redirects_to_the_dashboard(client: TestClient) -> None:
    resp = await client.get(f"/?token={TOKEN}", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == "/"
    page = await client.get("/", headers={"Cookie": f"{COOKIE_NAME}={session_cookie(resp.headers)}"})
    assert page.status == 200


async def test_forged_or_tampered_cookie_is_refused(client: TestClient) -> None:
    resp = await client.get(f"/?token={TOKEN}", allow_redirects=False)
    cookie = session_cookie(resp.headers)
    sid, expires, sig = cookie.split(".")
    for bad in (f"{sid}.{int(expires) + 1000}.{sig}", f"{sid}x.{expires}.{sig}", f"{sid}.{expires}.{sig[:-2]}AA",
                "a.b.c", "", "x" * 5000, f"{sid}.\u00b2.{sig}", f"{sid}.{expires}.{sig}.x"):
        resp = await client.get("/api/instances", headers={"Cookie": f"{COOKIE_NAME}={bad}"})
        assert resp.status == 401, bad


async def test_no_auth_mode_lets_everything_in(make_client) -> None:  # type: ignore[no-untyped-def]
    client = await make_client(auth="none", token=None)
    assert (await client.get("/api/instances")).status == 200
    info = await (await client.get("/api/auth/session")).json()
    assert info["via"] == "none"
