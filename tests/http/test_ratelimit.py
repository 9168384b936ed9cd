"""Brute force: failed logins per client address are limited, with 429 and Retry-After."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from aikore.http.ratelimit import FAILURES_PER_WINDOW, LoginLimiter, client_key
from tests.helpers import AikoreProcess

from .conftest import PASSWORD, TOKEN, bearer


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


def test_an_attempt_counts_before_it_is_checked_and_a_right_one_is_taken_back() -> None:
    limiter = LoginLimiter(limit=3, window=60, clock=lambda: 0.0)
    assert [limiter.acquire("a") for _ in range(4)] == [None, None, None, 60]
    limiter.release("a")  # one of the three was right
    assert limiter.acquire("a") is None
    assert limiter.acquire("a") == 60


@pytest.mark.parametrize(
    "one,other,same",
    [
        ("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe", True),
        ("2001:db8:1:2::1", "2001:db8:1:3::1", False),
        ("::ffff:192.0.2.7", "192.0.2.7", True),
        ("192.0.2.7", "192.0.2.8", False),
    ],
)
def test_ipv6_clients_are_counted_per_64(one: str, other: str, same: bool) -> None:
    assert (client_key(one) == client_key(other)) is same
    limiter = LoginLimiter(limit=2, window=60, clock=lambda: 0.0)
    limiter.fail(one)
    limiter.fail(one)
    assert (limiter.retry_after(other) is not None) is same


async def test_a_64_cannot_rotate_addresses_past_the_limit(make_client: Callable[..., TestClient]) -> None:
    client = await make_client(trusted_proxies=("127.0.0.0/8",))
    for i in range(FAILURES_PER_WINDOW):
        await _fail(client, 1, {"X-Forwarded-For": f"2001:db8:5:6::{i + 1:x}"})
    limited = await client.post("/api/auth/login", json={"token": TOKEN},
                                headers={"X-Forwarded-For": "2001:db8:5:6::99"})
    assert limited.status == 429
    neighbour = await client.post("/api/auth/login", json={"token": TOKEN},
                                  headers={"X-Forwarded-For": "2001:db8:5:7::1"})
    assert neighbour.status == 200


async def _concurrent_logins(proc: AikoreProcess, count: int) -> Counter[int]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def one() -> int:
            async with http.post(f"{proc.base}/api/auth/login", json={"password": "wrong guess"}) as resp:
                return resp.status

        return Counter(await asyncio.gather(*(one() for _ in range(count))))


def test_wrong_passwords_sent_at_once_are_checked_at_most_the_limit(
    aikore_process: Callable[..., AikoreProcess],
) -> None:
    # scrypt takes tens of milliseconds: without counting first, all 60 were checked (and 401).
    proc = aikore_process(extra_args=[], env={"AIKORE_PASSWORD": PASSWORD})
    statuses = asyncio.run(_concurrent_logins(proc, 60))
    assert set(statuses) <= {401, 429}
    assert statuses[401] <= FAILURES_PER_WINDOW, statuses
    assert proc.output().count("failed login from") == statuses[401]
