"""Security headers: on AiKore's own pages and API answers, never on what an instance serves."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from aikore.http.security_headers import HEADERS

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


async def test_proxied_app_answers_are_left_alone(client: TestClient) -> None:
    resp = await client.get("/app/demo/", headers=bearer(), allow_redirects=False)
    for name in HEADERS:
        assert name not in resp.headers, f"{name} added to a proxied /app/ answer"
