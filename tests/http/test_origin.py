"""Cross-origin requests: a page elsewhere (another port of the same host included) cannot drive the API."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiohttp.test_utils import TestClient

from aikore.http.sessions import COOKIE_NAME

from .conftest import TOKEN, bearer, origin_of, session_cookie

BODY = {"name": "x1", "blueprint": "demo"}


async def _cookie(client: TestClient) -> dict[str, str]:
    resp = await client.get(f"/?token={TOKEN}", allow_redirects=False)
    return {"Cookie": f"{COOKIE_NAME}={session_cookie(resp.headers)}"}


def _public_port_origin(client: TestClient) -> str:
    # What a page served on an instance's public port sends: same host, another port.
    return f"http://127.0.0.1:{client.port + 1 if client.port < 65535 else 19001}"


@pytest.mark.parametrize("method,path", [("POST", "/api/instances"), ("DELETE", "/api/instances/1"),
                                         ("PATCH", "/api/instances/1"), ("PUT", "/api/instances/1/script"),
                                         ("POST", "/api/auth/logout")])
async def test_cookie_request_from_a_public_port_page_is_refused(client: TestClient, method: str, path: str) -> None:
    headers = {**await _cookie(client), "Origin": _public_port_origin(client)}
    resp = await client.request(method, path, json=BODY, headers=headers)
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "forbidden"
    listed = await (await client.get("/api/instances", headers=bearer())).json()
    assert listed == []


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1", "not a url"])
async def test_cookie_post_from_a_foreign_origin_is_refused(client: TestClient, origin: str) -> None:
    resp = await client.post("/api/instances", json=BODY, headers={**await _cookie(client), "Origin": origin})
    assert resp.status == 403


async def test_cookie_post_from_a_foreign_referer_is_refused(client: TestClient) -> None:
    headers = {**await _cookie(client), "Referer": _public_port_origin(client) + "/page"}
    assert (await client.post("/api/instances", json=BODY, headers=headers)).status == 403


async def test_cookie_post_without_origin_or_referer_is_refused(client: TestClient) -> None:
    resp = await client.post("/api/instances", json=BODY, headers=await _cookie(client))
    assert resp.status == 403


async def test_cookie_post_from_the_dashboard_itself_is_allowed(client: TestClient) -> None:
    headers = {**await _cookie(client), "Origin": origin_of(client)}
    resp = await client.post("/api/instances", json=BODY, headers=headers)
    assert resp.status == 201
    referer = {**await _cookie(client), "Referer": origin_of(client) + "/"}
    assert (await client.delete(f"/api/instances/{(await resp.json())['id']}", headers=referer)).status == 200


async def test_bearer_scripts_need_no_origin(client: TestClient) -> None:
    assert (await client.post("/api/instances", json=BODY, headers=bearer())).status == 201


async def test_foreign_origin_is_refused_even_with_the_bearer_token(client: TestClient) -> None:
    headers = {**bearer(), "Origin": "http://evil.example"}
    assert (await client.post("/api/instances", json=BODY, headers=headers)).status == 403


async def test_login_from_a_foreign_page_is_refused(client: TestClient) -> None:
    resp = await client.post("/api/auth/login", json={"token": TOKEN}, headers={"Origin": "http://evil.example"})
    assert resp.status == 403
    assert "Set-Cookie" not in resp.headers


async def test_no_auth_mode_still_refuses_foreign_pages(make_client: Callable[..., TestClient]) -> None:
    # Without auth, any website the user visits could otherwise POST to 127.0.0.1:9000.
    client = await make_client(auth="none", token=None)
    resp = await client.post("/api/instances", json=BODY, headers={"Origin": "http://evil.example"})
    assert resp.status == 403
    assert (await client.post("/api/instances", json=BODY)).status == 201


async def test_cookie_websocket_upgrade_from_a_foreign_origin_is_refused(client: TestClient) -> None:
    headers = {**await _cookie(client), "Origin": _public_port_origin(client), "Connection": "Upgrade",
               "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    for path in ("/api/system/stream", "/app/demo/ws"):
        resp = await client.get(path, headers=headers)
        assert resp.status == 403, path


async def test_safe_methods_from_anywhere_are_not_blocked(client: TestClient) -> None:
    # Reading is harmless (the browser keeps the answer from the foreign page), and links must work.
    headers = {**await _cookie(client), "Origin": "http://evil.example"}
    assert (await client.get("/api/instances", headers=headers)).status == 200


async def test_cookie_websocket_upgrade_to_the_api_without_origin_is_refused(client: TestClient) -> None:
    headers = {**await _cookie(client), "Connection": "Upgrade", "Upgrade": "websocket",
               "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    assert (await client.get("/api/system/stream", headers=headers)).status == 403
