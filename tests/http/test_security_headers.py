"""Security headers: on AiKore's own pages and API answers, never on what an instance serves."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import proxy
from aikore.http.security_headers import HEADERS
from aikore.routing import ROUTES
from tests.proxy.upstream import make_upstream

from .conftest import bearer


async def test_dashboard_api_and_error_answers_carry_the_headers(client: TestClient) -> None:
    for path, headers in (("/login", {}), ("/api/health", {}), ("/api/instances", bearer()), ("/", bearer()),
                          ("/api/instances", {}), ("/api/instances/999", bearer()), ("/nope", bearer())):
        resp = await client.get(path, headers=headers, allow_redirects=False)
        for name, value in HEADERS.items():
            assert resp.headers.get(name) == value, f"{name} missing on {path} ({resp.status})"
    csp = HEADERS["Content-Security-Policy"]
    assert "frame-ancestors 'self'" in csp
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]


async def test_proxied_app_answers_are_left_alone(make_client: Callable[..., TestClient],
                                                  aiohttp_server: Callable[..., Awaitable[TestServer]]) -> None:
    upstream = await aiohttp_server(make_upstream())
    client = await make_client()
    client.app[ROUTES].set("demo", port=upstream.port, state="running")
    for path in ("/app/demo/echo/x", "/app/demo/status/404", "/app/demo/ws-refused"):
        resp = await client.get(path, headers=bearer(), allow_redirects=False)
        assert resp.status in (200, 403, 404)
        for name in HEADERS:
            assert name not in resp.headers, f"{name} added to the app's own answer on {path}"


@pytest.mark.parametrize("state,status", [(None, 404), ("stopped", 503), ("starting", 503), ("running", 502)])
async def test_aikores_own_pages_under_app_carry_the_headers(client: TestClient, closed_port: int,
                                                              state: str | None, status: int) -> None:
    if state is not None:
        client.app[ROUTES].set("demo", port=closed_port, state=state)
    resp = await client.get("/app/demo/", headers=bearer(), allow_redirects=False)
    assert resp.status == status
    _assert_page_headers(resp.headers, f"/app/demo/ {state}")


async def test_the_gates_answers_under_app_carry_the_headers(client: TestClient) -> None:
    for headers, status in (({}, 401), ({"Accept": "text/html"}, 302), (bearer("wrong"), 401)):
        resp = await client.get("/app/demo/", headers=headers, allow_redirects=False)
        assert resp.status == status
        for name, value in HEADERS.items():
            assert resp.headers.get(name) == value, f"{name} missing on the gate's {status}"


async def test_a_public_ports_own_pages_carry_the_headers(closed_port: int) -> None:
    table = proxy.RouteTable()
    table.set("demo", port=closed_port, state="starting", public_port=None)
    session = proxy.client_session()
    try:
        for state, status in (("starting", 503), ("running", 502)):
            table.set("demo", port=closed_port, state=state)
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", proxy.port_handler(table, session, "demo"))
            async with TestClient(TestServer(app)) as http:
                resp = await http.get("/")
                assert resp.status == status
                _assert_page_headers(resp.headers, f"public port {state}")
    finally:
        await session.close()


def _assert_page_headers(headers: Mapping[str, str], where: str) -> None:
    """The proxy's fixed pages: the same protections as AiKore's pages, with a policy of their own."""
    for name in HEADERS:
        assert name in headers, f"{name} missing on {where}"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "SAMEORIGIN"
    assert headers["Referrer-Policy"] == "same-origin"
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'self'" in csp and "script-src" not in csp
