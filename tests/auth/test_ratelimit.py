"""Brute force: failed logins per client address are limited, with 429 and Retry-After."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp.test_utils import TestClient

from aikore.http.ratelimit import LoginLimiter

from .conftest import TOKEN, bearer


async def _fail(client: TestClient, times: int, headers: dict[str, str] | None = None) -> None:
    for _ in range(times):
        resp = await client.post("/api/auth/login", json={"token": "wrong"}, headers=headers or {})
        assert resp.status == 401


async def test_eleventh_failed_login_in_a_minute_gets_429_with_retry_after(client: TestClient) -> None:
    await _fail(client, 10)
    resp = await client.post("/api/auth/login", json={"token": "wrong"})
    assert resp.status == 429
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert (await resp.json())["error"]["code"] == "too_many_requests"


async def test_while_limited_even_the_right_token_is_refused(client: TestClient) -> None:
    # Otherwise the limit would still answer "right" or "wrong" to a brute forcer.
    await _fail(client, 10)
    assert (await client.post("/api/auth/login", json={"token": TOKEN})).status == 429
    assert (await client.get("/api/instances", headers=bearer())).status == 429
    assert (await client.get(f"/api/instances?token={TOKEN}")).status == 429


async def test_wrong_bearer_tokens_count_too(client: TestClient) -> None:
    for _ in range(10):
        assert (await client.get("/api/instances", headers=bearer("wrong"))).status == 401
    assert (await client.get("/api/instances", headers=bearer("wrong"))).status == 429


async def test_login_form_is_limited_with_a_page(client: TestClient) -> None:
    origin = {"Origin": str(client.make_url("/")).rstrip("/")}
    for _ in range(10):
        assert (await client.post("/login", data={"token": "x"}, headers=origin)).status == 401
    resp = await client.post("/login", data={"token": TOKEN}, headers=origin)
    assert resp.status == 429
    assert "Retry-After" in resp.headers
    assert "Too many failed attempts" in await resp.text()


async def test_health_and_the_login_page_stay_reachable_while_limited(client: TestClient) -> None:
    await _fail(client, 10)
    assert (await client.get("/api/health")).status == 200
    assert (await client.get("/login")).status == 200


async def test_forwarded_for_is_ignored_from_untrusted_peers(client: TestClient) -> None:
    # A client cannot dodge the limit by claiming another address.
    for i in range(10):
        await _fail(client, 1, {"X-Forwarded-For": f"10.0.0.{i}"})
    resp = await client.post("/api/auth/login", json={"token": "x"}, headers={"X-Forwarded-For": "10.0.1.1"})
    assert resp.status == 429


async def test_trusted_proxy_limits_per_forwarded_client(make_client: Callable[..., TestClient]) -> None:
    client = await make_client(trusted_proxies=("127.0.0.0/8",))
    await _fail(client, 10, {"X-Forwarded-For": "203.0.113.7"})
    limited = await client.post("/api/auth/login", json={"token": "x"}, headers={"X-Forwarded-For": "203.0.113.7"})
    assert limited.status == 429
    # Another client behind the same proxy is not punished for it.
    other = await client.post("/api/auth/login", json={"token": TOKEN}, headers={"X-Forwarded-For": "203.0.113.8"})
    assert other.status == 200


def test_limiter_window_slides() -> None:
    now = [0.0]
    limiter = LoginLimiter(limit=3, window=60, clock=lambda: now[0])
    for t in (0, 10, 20):
        now[0] = t
        assert limiter.retry_after("a") is None
        limiter.fail("a")
    assert limiter.retry_after("a") == 40
    assert limiter.retry_after("b") is None
    now[0] = 60.5  # the first failure left the window
    assert limiter.retry_after("a") is None
    limiter.fail("a")
    assert limiter.retry_after("a") == 10


def test_limiter_forgets_quiet_addresses() -> None:
    now = [0.0]
    limiter = LoginLimiter(limit=2, window=1, clock=lambda: now[0])
    limiter.fail("a")
    now[0] = 5
    assert limiter.retry_after("a") is None
    assert not limiter._failures
