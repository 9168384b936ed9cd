"""Logging in and out: the form, the JSON endpoints, password mode, session expiry, safe ``next``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from aikore.config import Settings
from aikore.http import Auth
from aikore.http.sessions import COOKIE_NAME

from .conftest import PASSWORD, TOKEN, bearer, origin_of, session_cookie


def _form(client: TestClient, **fields: str) -> dict[str, object]:
    return {"data": fields, "headers": {"Origin": origin_of(client)}, "allow_redirects": False}


async def test_login_form_with_the_token_sets_the_cookie_and_goes_to_next(client: TestClient) -> None:
    resp = await client.post("/login", **_form(client, token=TOKEN, next="/app/demo/?x=1"))
    assert resp.status == 303
    assert resp.headers["Location"] == "/app/demo/?x=1"
    cookie = session_cookie(resp.headers)
    info = await (await client.get("/api/auth/session", headers={"Cookie": f"{COOKIE_NAME}={cookie}"})).json()
    assert info["via"] == "session"
    assert info["expires_at"].endswith("Z")


async def test_login_form_with_a_wrong_token_shows_the_page_again(client: TestClient) -> None:
    resp = await client.post("/login", **_form(client, token="nope", next="/"))
    assert resp.status == 401
    assert "Set-Cookie" not in resp.headers
    text = await resp.text()
    assert 'role="alert"' in text
    assert "not right" in text


async def test_login_page_escapes_next(client: TestClient) -> None:
    resp = await client.get('/login?next=/"><script>alert(1)</script>')
    text = await resp.text()
    assert "<script>alert" not in text


@pytest.mark.parametrize(
    "target",
    ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "http://127.0.0.1:80/",
     "\t//evil.example", "http://evil.example:19001/"],
)
async def test_next_never_leaves_the_site(client: TestClient, target: str) -> None:
    resp = await client.post("/login", **_form(client, token=TOKEN, next=target))
    assert resp.status == 303
    assert resp.headers["Location"] == "/"


async def test_next_may_point_at_a_public_port_of_the_same_host(client: TestClient) -> None:
    target = "http://127.0.0.1:19005/some/page?q=1"
    resp = await client.post("/login", **_form(client, token=TOKEN, next=target))
    assert resp.headers["Location"] == target


async def test_api_login_and_logout(client: TestClient) -> None:
    origin = {"Origin": origin_of(client)}
    resp = await client.post("/api/auth/login", json={"token": TOKEN}, headers=origin)
    assert resp.status == 200
    assert (await resp.json())["via"] == "session"
    cookie = {"Cookie": f"{COOKIE_NAME}={session_cookie(resp.headers)}"}
    assert (await client.get("/api/instances", headers=cookie)).status == 200
    out = await client.post("/api/auth/logout", headers={**cookie, **origin})
    assert out.status == 200
    assert f"{COOKIE_NAME}=" in out.headers["Set-Cookie"]
    # The same cookie value no longer works, even if the browser kept it.
    assert (await client.get("/api/instances", headers=cookie)).status == 401


async def test_api_login_with_wrong_token_is_401(client: TestClient) -> None:
    resp = await client.post("/api/auth/login", json={"token": "nope"})
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("body", [{}, {"token": 5}, {"token": ""}, {"token": TOKEN, "password": "x"}, {"user": "x"},
                                  {"token": "x" * 5000}])
async def test_api_login_rejects_malformed_bodies(client: TestClient, body: dict[str, object]) -> None:
    resp = await client.post("/api/auth/login", json=body)
    assert resp.status == 400


async def test_password_mode_logs_in_with_the_password(make_client: Callable[..., TestClient]) -> None:
    client = await make_client(auth="password", password=PASSWORD)
    page = await (await client.get("/login")).text()
    assert 'name="password"' in page
    wrong = await client.post("/login", **_form(client, password="wrong"))
    assert wrong.status == 401
    resp = await client.post("/login", **_form(client, password=PASSWORD, next="/"))
    assert resp.status == 303
    cookie = {"Cookie": f"{COOKIE_NAME}={session_cookie(resp.headers)}"}
    assert (await client.get("/api/instances", headers=cookie)).status == 200
    # Scripts keep using the token.
    assert (await client.get("/api/instances", headers=bearer())).status == 200


async def test_password_is_never_written_to_disk(make_client: Callable[..., TestClient],
                                                 token_settings: Settings) -> None:
    client = await make_client(auth="password", password=PASSWORD)
    resp = await client.post("/api/auth/login", json={"password": PASSWORD})
    assert resp.status == 200
    await client.close()  # the app's files are complete once it has shut down
    _assert_nowhere_in(Path(token_settings.data_dir), PASSWORD.encode())


def _assert_nowhere_in(folder: Path, secret: bytes) -> None:
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert secret not in path.read_bytes(), path


async def test_password_login_is_refused_in_token_mode(client: TestClient) -> None:
    resp = await client.post("/api/auth/login", json={"password": PASSWORD})
    assert resp.status == 400


async def test_logged_in_browser_skips_the_login_page(client: TestClient) -> None:
    resp = await client.post("/login", **_form(client, token=TOKEN))
    cookie = {"Cookie": f"{COOKIE_NAME}={session_cookie(resp.headers)}"}
    again = await client.get("/login?next=/app/demo/", headers=cookie, allow_redirects=False)
    assert again.status == 302
    assert again.headers["Location"] == "/app/demo/"


def test_session_expires_after_its_ttl(tmp_path: Path) -> None:
    now = [1_000_000.0]
    auth = Auth(Settings(data_dir=tmp_path, token=TOKEN, session_ttl=60), clock=lambda: now[0])
    auth.load()
    session = auth.sessions.open()
    assert auth.sessions.from_cookie(session.cookie) is not None
    now[0] += 59
    assert auth.sessions.from_cookie(session.cookie) is not None
    now[0] += 2
    assert auth.sessions.from_cookie(session.cookie) is None


def test_changing_the_token_ends_existing_sessions(tmp_path: Path) -> None:
    first = Auth(Settings(data_dir=tmp_path, token=TOKEN))
    first.load()
    cookie = first.sessions.open().cookie
    same = Auth(Settings(data_dir=tmp_path, token=TOKEN))
    same.load()
    assert same.sessions.from_cookie(cookie) is not None
    changed = Auth(Settings(data_dir=tmp_path, token=TOKEN + "-new"))
    changed.load()
    assert changed.sessions.from_cookie(cookie) is None


def test_logout_survives_a_restart(tmp_path: Path) -> None:
    first = Auth(Settings(data_dir=tmp_path, token=TOKEN))
    first.load()
    session = first.sessions.open()
    first.sessions.revoke(session)
    again = Auth(Settings(data_dir=tmp_path, token=TOKEN))
    again.load()
    assert again.sessions.from_cookie(session.cookie) is None


def test_password_sessions_survive_a_restart_but_not_a_password_change(tmp_path: Path) -> None:
    first = Auth(Settings(data_dir=tmp_path, token=TOKEN, auth="password", password=PASSWORD))
    first.load()
    cookie = first.sessions.open().cookie
    same = Auth(Settings(data_dir=tmp_path, token=TOKEN, auth="password", password=PASSWORD))
    same.load()
    assert same.sessions.from_cookie(cookie) is not None
    changed = Auth(Settings(data_dir=tmp_path, token=TOKEN, auth="password", password=PASSWORD + "!"))
    changed.load()
    assert changed.sessions.from_cookie(cookie) is None
