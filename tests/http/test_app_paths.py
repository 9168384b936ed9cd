"""The real AiKore app's /app/ paths: the gate decides, and admitted requests reach the app clean.

The main port is built as ``aikore serve`` builds it (create_app behind aiohttp's server on a real
socket); a real upstream answers /app/demo/. Refusals come from the gate, and admitted requests
must reach the app without AiKore's own cookie or bearer token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import DummyCookieJar, web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

import proxy
from aikore.app import create_app
from aikore.config import Settings
from aikore.desktop import DESKTOP_ROUTES
from aikore.http import AUTH
from aikore.http.ratelimit import FAILURES_PER_WINDOW
from aikore.http.sessions import COOKIE_NAME
from aikore.routing import ROUTES
from tests.proxy.upstream import make_upstream

pytestmark = pytest.mark.asyncio

TOKEN = "app-paths-token-0123456789abcdef"
JSON = {"Accept": "application/json"}


@dataclass
class Reply:
    status: int
    headers: Any
    body: Any


@dataclass
class Main:
    url: str
    app: web.Application
    http: aiohttp.ClientSession

    @property
    def forwarded(self) -> int:
        """Requests that reached the app."""
        return self.app[ROUTES].get("demo").requests

    def session_cookie(self) -> str:
        return self.app[AUTH].sessions.open().cookie

    async def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        async with self.http.get(self.url + path, headers=headers, allow_redirects=False) as resp:
            body = await resp.json() if resp.content_type == "application/json" else await resp.text()
            return Reply(resp.status, resp.headers, body)


MainFactory = Callable[..., Awaitable[Main]]


@pytest_asyncio.fixture
async def upstream(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> TestServer:
    """A real app that echoes what it received (tests/proxy/upstream.py)."""
    return await aiohttp_server(make_upstream(), **proxy.SERVER_HANDLER_ARGS)


@pytest_asyncio.fixture
async def make_main(upstream: TestServer, tmp_path: Path) -> AsyncIterator[MainFactory]:
    """``await make_main(auth=...)``: AiKore with those settings, on a real socket."""
    stack: list[tuple[web.AppRunner, aiohttp.ClientSession]] = []

    async def make(**changes: Any) -> Main:
        settings = Settings(data_dir=tmp_path / f"data{len(stack)}", token=TOKEN, stop_timeout=5.0, **changes)
        app = create_app(settings)
        runner = web.AppRunner(app, access_log=None, **proxy.SERVER_HANDLER_ARGS)
        await runner.setup()
        app[ROUTES].set("demo", port=upstream.port, state="running")
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        http = aiohttp.ClientSession(cookie_jar=DummyCookieJar())
        stack.append((runner, http))
        return Main(f"http://127.0.0.1:{runner.addresses[0][1]}", app, http)

    try:
        yield make
    finally:
        for runner, http in stack:
            await http.close()
            await runner.cleanup()


@pytest_asyncio.fixture
async def main(make_main: MainFactory) -> Main:
    return await make_main()


def _seen(reply: Reply) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in reply.body["headers"]:
        out.setdefault(name.lower(), []).append(value)
    return out


async def test_no_credentials_get_the_gates_401_json(main: Main) -> None:
    reply = await main.get("/app/demo/echo/", JSON)
    assert reply.status == 401
    assert reply.body["error"]["code"] == "unauthorized"
    assert reply.headers["WWW-Authenticate"] == 'Bearer realm="AiKore"'
    assert main.forwarded == 0


async def test_a_browser_without_a_session_is_sent_to_the_login_page(main: Main) -> None:
    reply = await main.get("/app/demo/echo/", {"Accept": "text/html"})
    assert reply.status == 302
    assert reply.headers["Location"].startswith("/login?next=")
    assert main.forwarded == 0


@pytest.mark.parametrize(
    "cookie",
    ["forged.123.abc", "", "x" * 300],
    ids=["forged", "empty", "oversized"],
)
async def test_a_bad_session_cookie_is_refused_by_the_gate(main: Main, cookie: str) -> None:
    reply = await main.get("/app/demo/echo/", {**JSON, "Cookie": f"{COOKIE_NAME}={cookie}"})
    assert reply.status == 401
    assert main.forwarded == 0


async def test_an_expired_or_logged_out_session_is_refused(main: Main) -> None:
    sessions = main.app[AUTH].sessions
    session = sessions.open()
    sessions.revoke(session)
    reply = await main.get("/app/demo/echo/", {**JSON, "Cookie": f"{COOKIE_NAME}={session.cookie}"})
    assert reply.status == 401
    assert main.forwarded == 0


async def test_a_valid_session_is_forwarded_without_aikores_cookie(main: Main) -> None:
    cookie = f"theme=dark; {COOKIE_NAME}={main.session_cookie()}; app=1"
    reply = await main.get("/app/demo/echo/x", {"Cookie": cookie, "Authorization": "Bearer the-apps-own"})
    assert reply.status == 200
    seen = _seen(reply)
    assert seen["cookie"] == ["theme=dark; app=1"]
    # A bearer token that is not AiKore's belongs to the app and passes.
    assert seen["authorization"] == ["Bearer the-apps-own"]
    assert main.forwarded == 1


async def test_the_bearer_token_is_forwarded_without_itself(main: Main) -> None:
    reply = await main.get("/app/demo/echo/", {"Authorization": f"Bearer {TOKEN}", "Cookie": "app=1"})
    assert reply.status == 200
    seen = _seen(reply)
    assert "authorization" not in seen
    assert seen["cookie"] == ["app=1"]
    assert main.forwarded == 1


async def test_a_wrong_bearer_token_is_counted_by_the_gate_and_then_even_the_right_one_waits(main: Main) -> None:
    for _ in range(FAILURES_PER_WINDOW):
        reply = await main.get("/app/demo/echo/", {**JSON, "Authorization": "Bearer wrong"})
        assert reply.status == 401
    reply = await main.get("/app/demo/echo/", {**JSON, "Authorization": f"Bearer {TOKEN}"})
    assert reply.status == 429
    assert "Retry-After" in reply.headers
    assert main.forwarded == 0
    # A session cookie does not go through the limiter, at the gate or here.
    reply = await main.get("/app/demo/echo/", {"Cookie": f"{COOKIE_NAME}={main.session_cookie()}"})
    assert reply.status == 200
    assert main.forwarded == 1


async def test_the_login_url_token_gets_the_gates_cookie_and_redirect(main: Main) -> None:
    reply = await main.get(f"/app/demo/echo/page?a=1&token={TOKEN}", {"Accept": "text/html"})
    assert reply.status == 302
    assert reply.headers["Location"] == "/app/demo/echo/page?a=1"
    assert COOKIE_NAME in reply.headers["Set-Cookie"]
    # With a valid session beside it, the request goes on (the gate answers for the session).
    cookie = {"Cookie": f"{COOKIE_NAME}={main.session_cookie()}"}
    reply = await main.get(f"/app/demo/echo/?token={TOKEN}", cookie)
    assert reply.status == 200
    assert main.forwarded == 1


async def test_without_auth_a_loopback_aikore_forwards_only_loopback_host_names(make_main: MainFactory) -> None:
    main = await make_main(auth="none")
    reply = await main.get("/app/demo/echo/", {**JSON, "Host": "evil.example"})
    assert reply.status == 403
    assert main.forwarded == 0
    reply = await main.get("/app/demo/echo/")
    assert reply.status == 200
    assert main.forwarded == 1


async def test_behind_trusted_proxies_everything_goes_through_the_gate(make_main: MainFactory) -> None:
    main = await make_main(trusted_proxies=("10.0.0.1",))
    reply = await main.get("/app/demo/echo/", {"Authorization": f"Bearer {TOKEN}"})
    assert reply.status == 200
    assert main.forwarded == 1


async def test_logging_out_ends_access_for_that_very_cookie(main: Main) -> None:
    sessions = main.app[AUTH].sessions
    session = sessions.open()
    headers = {**JSON, "Cookie": f"{COOKIE_NAME}={session.cookie}"}
    assert (await main.get("/app/demo/echo/", headers)).status == 200
    sessions.revoke(session)
    assert (await main.get("/app/demo/echo/", headers)).status == 401
    assert main.forwarded == 1


async def _send(main: Main, method: str, path: str, headers: dict[str, str]) -> Reply:
    async with main.http.request(method, main.url + path, headers=headers, data=b"x" * 10,
                                 allow_redirects=False) as resp:
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return Reply(resp.status, resp.headers, body)


@pytest.mark.parametrize("prefix", ["/app/demo", "/desktop/demo"])
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
async def test_no_copy_of_the_token_reaches_the_app_on_any_path_or_method(main: Main, prefix: str,
                                                                          method: str) -> None:
    main.app[DESKTOP_ROUTES].table.set("demo", port=main.app[ROUTES].get("demo").port, state="running")
    # A second ?token= and a second Authorization header: every copy comes off (HTTP allows one
    # Authorization header; when either is AiKore's, neither goes on).
    headers = CIMultiDict([("Authorization", "token the-apps-own"), ("Authorization", f"Bearer {TOKEN}"),
                           ("Cookie", f"{COOKIE_NAME}={main.session_cookie()}")])
    reply = await _send(main, method, f"{prefix}/echo/x?token=other&a=1&token={TOKEN}&tok%65n={TOKEN}", headers)
    assert reply.status == 200, reply.body
    assert reply.body["raw_path"] == "/echo/x?token=other&a=1"
    assert TOKEN not in str(reply.body["headers"])
    assert "authorization" not in _seen(reply)
    assert "cookie" not in _seen(reply)


async def test_cookie_state_changes_to_an_app_come_only_from_aikore_or_its_own_public_port(main: Main) -> None:
    main.app[ROUTES].set("demo", port=main.app[ROUTES].get("demo").port, state="running", public_port=19005)
    main.app[DESKTOP_ROUTES].table.set("demo", port=main.app[ROUTES].get("demo").port, state="running")
    cookie = {"Cookie": f"{COOKIE_NAME}={main.session_cookie()}"}
    for prefix in ("/app/demo", "/desktop/demo"):
        for origin, status in ((main.url, 200), ("http://127.0.0.1:19005", 200), (None, 200),
                               ("http://127.0.0.1:19006", 403), ("http://evil.example", 403), ("null", 403)):
            for method in ("POST", "PUT", "DELETE"):
                headers = {**cookie, **({"Origin": origin} if origin else {})}
                reply = await _send(main, method, f"{prefix}/echo/x", headers)
                assert reply.status == status, (prefix, origin, method)
    # The referer stands for a missing Origin, as on AiKore's own endpoints.
    reply = await _send(main, "POST", "/app/demo/echo/x", {**cookie, "Referer": "http://127.0.0.1:19006/page"})
    assert reply.status == 403
    # Reading is left alone, and a bearer script is no browser.
    assert (await _send(main, "GET", "/app/demo/echo/", {**cookie, "Origin": "http://127.0.0.1:19006"})).status == 200
    bearer = {"Authorization": f"Bearer {TOKEN}", "Origin": "http://127.0.0.1:19006"}
    assert (await _send(main, "POST", "/app/demo/echo/", bearer)).status == 200
