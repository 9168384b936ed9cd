"""The fast path in front of the real AiKore app: it takes only what the auth gate would let in.

The main port is built as ``aikore serve`` builds it (aikore.http.fastpath.fast_path in front of
create_app's server); a real upstream answers /app/demo/. Refusals must come from the gate itself,
handed the request by the fast path, and admitted requests must reach the app without AiKore's
own cookie or bearer token.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import DummyCookieJar, web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict, CIMultiDictProxy

import proxy
from aikore.app import create_app
from aikore.config import Settings
from aikore.http import AUTH, Auth
from aikore.http.fastpath import fast_path, make_accept
from aikore.http.ratelimit import FAILURES_PER_WINDOW
from aikore.http.rebinding import host_is_loopback
from aikore.http.sessions import COOKIE_NAME
from aikore.routing import ROUTES, UPSTREAM_POOL
from proxy.fastpath import FastPath

pytestmark = pytest.mark.asyncio

TOKEN = "fastpath-token-0123456789abcdef"
JSON = {"Accept": "application/json"}


@dataclass
class Reply:
    status: int
    headers: Any
    body: Any


@dataclass
class Main:
    url: str
    fast: FastPath
    app: web.Application
    http: aiohttp.ClientSession

    def session_cookie(self) -> str:
        return self.app[AUTH].sessions.open().cookie

    async def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        async with self.http.get(self.url + path, headers=headers, allow_redirects=False) as resp:
            body = await resp.json() if resp.content_type == "application/json" else await resp.text()
            return Reply(resp.status, resp.headers, body)


MainFactory = Callable[..., Awaitable[Main]]


@pytest_asyncio.fixture
async def make_main(upstream: TestServer, tmp_path: Path) -> AsyncIterator[MainFactory]:
    """``await make_main(auth=...)``: AiKore with those settings, behind the fast path."""
    stack: list[tuple[asyncio.Server, FastPath, web.AppRunner, aiohttp.ClientSession]] = []

    async def make(**changes: Any) -> Main:
        settings = Settings(data_dir=tmp_path / f"data{len(stack)}", token=TOKEN, stop_timeout=5.0, **changes)
        app = create_app(settings)
        runner = web.AppRunner(app, access_log=None, **proxy.SERVER_HANDLER_ARGS)
        await runner.setup()
        app[ROUTES].set("demo", port=upstream.port, state="running")
        assert runner.server is not None
        fast = fast_path(app[AUTH], app[ROUTES], app[UPSTREAM_POOL], runner.server)
        server = await asyncio.get_running_loop().create_server(fast, "127.0.0.1", 0)
        # A connection handed to aiohttp stays there, so each request gets its own connection.
        connector = aiohttp.TCPConnector(force_close=True)
        http = aiohttp.ClientSession(connector=connector, cookie_jar=DummyCookieJar())
        stack.append((server, fast, runner, http))
        return Main(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", fast, app, http)

    try:
        yield make
    finally:
        for server, fast, runner, http in stack:
            await http.close()
            server.close()
            fast.close_connections()
            await runner.cleanup()


@pytest_asyncio.fixture
async def main(make_main: MainFactory) -> Main:
    return await make_main()


def _seen(reply: Reply) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in reply.body["headers"]:
        out.setdefault(name.lower(), []).append(value)
    return out


async def test_no_credentials_are_handed_to_the_gate_which_answers_401_json(main: Main) -> None:
    reply = await main.get("/app/demo/echo/", JSON)
    assert reply.status == 401
    assert reply.body["error"]["code"] == "unauthorized"
    assert reply.headers["WWW-Authenticate"] == 'Bearer realm="AiKore"'
    assert (main.fast.forwarded, main.fast.handed_off) == (0, 1)


async def test_a_browser_without_a_session_is_sent_to_the_login_page(main: Main) -> None:
    reply = await main.get("/app/demo/echo/", {"Accept": "text/html"})
    assert reply.status == 302
    assert reply.headers["Location"].startswith("/login?next=")
    assert main.fast.forwarded == 0


@pytest.mark.parametrize(
    "cookie",
    ["forged.123.abc", "", "x" * 300],
    ids=["forged", "empty", "oversized"],
)
async def test_a_bad_session_cookie_is_refused_by_the_gate(main: Main, cookie: str) -> None:
    reply = await main.get("/app/demo/echo/", {**JSON, "Cookie": f"{COOKIE_NAME}={cookie}"})
    assert reply.status == 401
    assert (main.fast.forwarded, main.fast.handed_off) == (0, 1)


async def test_an_expired_or_logged_out_session_is_refused(main: Main) -> None:
    sessions = main.app[AUTH].sessions
    session = sessions.open()
    sessions.revoke(session)
    reply = await main.get("/app/demo/echo/", {**JSON, "Cookie": f"{COOKIE_NAME}={session.cookie}"})
    assert reply.status == 401
    assert main.fast.forwarded == 0


async def test_a_valid_session_is_forwarded_without_aikores_cookie(main: Main) -> None:
    cookie = f"theme=dark; {COOKIE_NAME}={main.session_cookie()}; app=1"
    reply = await main.get("/app/demo/echo/x", {"Cookie": cookie, "Authorization": "Bearer the-apps-own"})
    assert reply.status == 200
    seen = _seen(reply)
    assert seen["cookie"] == ["theme=dark; app=1"]
    # A bearer token that is not AiKore's belongs to the app and passes.
    assert seen["authorization"] == ["Bearer the-apps-own"]
    assert (main.fast.forwarded, main.fast.handed_off) == (1, 0)


async def test_the_bearer_token_is_forwarded_without_itself(main: Main) -> None:
    reply = await main.get("/app/demo/echo/", {"Authorization": f"Bearer {TOKEN}", "Cookie": "app=1"})
    assert reply.status == 200
    seen = _seen(reply)
    assert "authorization" not in seen
    assert seen["cookie"] == ["app=1"]
    assert (main.fast.forwarded, main.fast.handed_off) == (1, 0)


async def test_a_wrong_bearer_token_is_counted_by_the_gate_and_then_even_the_right_one_waits(main: Main) -> None:
    for _ in range(FAILURES_PER_WINDOW):
        reply = await main.get("/app/demo/echo/", {**JSON, "Authorization": "Bearer wrong"})
        assert reply.status == 401
    reply = await main.get("/app/demo/echo/", {**JSON, "Authorization": f"Bearer {TOKEN}"})
    assert reply.status == 429
    assert "Retry-After" in reply.headers
    assert main.fast.forwarded == 0
    # A session cookie does not go through the limiter, at the gate or here.
    reply = await main.get("/app/demo/echo/", {"Cookie": f"{COOKIE_NAME}={main.session_cookie()}"})
    assert reply.status == 200
    assert main.fast.forwarded == 1


async def test_the_login_url_token_gets_the_gates_cookie_and_redirect(main: Main) -> None:
    reply = await main.get(f"/app/demo/echo/page?a=1&token={TOKEN}", {"Accept": "text/html"})
    assert reply.status == 302
    assert reply.headers["Location"] == "/app/demo/echo/page?a=1"
    assert COOKIE_NAME in reply.headers["Set-Cookie"]
    # Even with a valid session beside it, a ?token= request is the gate's to answer.
    cookie = {"Cookie": f"{COOKIE_NAME}={main.session_cookie()}"}
    reply = await main.get(f"/app/demo/echo/?token={TOKEN}", cookie)
    assert reply.status == 200
    assert main.fast.forwarded == 0


async def test_without_auth_a_loopback_aikore_forwards_only_loopback_host_names(make_main: MainFactory) -> None:
    main = await make_main(auth="none")
    reply = await main.get("/app/demo/echo/", {**JSON, "Host": "evil.example"})
    assert reply.status == 403
    assert (main.fast.forwarded, main.fast.handed_off) == (0, 1)
    reply = await main.get("/app/demo/echo/")
    assert reply.status == 200
    assert main.fast.forwarded == 1


async def test_behind_trusted_proxies_everything_goes_through_the_gate(make_main: MainFactory) -> None:
    main = await make_main(trusted_proxies=("10.0.0.1",))
    reply = await main.get("/app/demo/echo/", {"Authorization": f"Bearer {TOKEN}"})
    assert reply.status == 200
    assert (main.fast.forwarded, main.fast.handed_off) == (0, 1)


async def test_logging_out_ends_fast_path_access_for_that_very_cookie(main: Main) -> None:
    sessions = main.app[AUTH].sessions
    session = sessions.open()
    headers = {**JSON, "Cookie": f"{COOKIE_NAME}={session.cookie}"}
    assert (await main.get("/app/demo/echo/", headers)).status == 200
    sessions.revoke(session)
    assert (await main.get("/app/demo/echo/", headers)).status == 401
    assert (main.fast.forwarded, main.fast.handed_off) == (1, 1)


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.0.0.1:9000", "LOCALHOST:80", "[::1]:8080", "127.0.0.1:65535", "127.0.0.1:99999",
     "127.0.0.1:", "localhost.:80", "127.0.0.2", "evil.example", "127.0.0.1.evil.example", "127.0.0.1 :80", ""],
)
async def test_a_host_the_fast_path_takes_without_auth_is_one_the_gate_takes(host: str, tmp_path: Path) -> None:
    accept = make_accept(Auth(Settings(data_dir=tmp_path, auth="none", token=None)))
    taken = accept(CIMultiDictProxy(CIMultiDict({"Host": host})), "GET", "/app/demo/", "127.0.0.1") is not None
    # Not a mirror of the gate's test but the gate's own decision: exactly the hosts it takes.
    assert taken == host_is_loopback(host)
