"""The session across tabs: a logout anywhere ends every tab's streams at once, and the login page
says why the browser is there (logged out, ended, a wrong token in the link)."""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import expect

from tests.dashboard.conftest import TOKEN, Dashboard
from tests.helpers import AikoreProcess

# "At once": well under the events stream's 15 s keepalive and the client's reconnect backoff.
AT_ONCE = 5_000


def test_logout_in_one_tab_shows_the_login_in_every_tab_at_once(shared_dashboard: Callable[..., Dashboard]) -> None:
    board = shared_dashboard()
    board.login()
    page = board.page
    other = page.context.new_page()
    other.goto(board.base + "/#/system")
    expect(other.locator("#live-status")).to_have_attribute("data-state", "live", timeout=30_000)
    # Another browser holding the same session (no shared BroadcastChannel): only the server can tell it.
    elsewhere = page.context.browser.new_context()
    elsewhere.add_cookies(page.context.cookies())
    far = elsewhere.new_page()
    far.goto(board.base + "/")
    expect(far.locator("#live-status")).to_have_attribute("data-state", "live", timeout=30_000)

    page.click(".logout-form button")
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.locator("#login-notice")).to_have_text("You have logged out.")
    expect(other).to_have_url(re.compile(r"/login\?"), timeout=AT_ONCE)
    expect(other.locator("#login-notice")).to_have_text("You logged out in another tab or window.")
    assert parse_qs(urlsplit(other.url).query)["next"] == ["/#/system"], "it comes back to where it was"
    # The server tells the session's streams and ends them.
    expect(far).to_have_url(re.compile(r"/login\?"), timeout=AT_ONCE)
    expect(far.locator("#login-notice")).to_have_text("You logged out in another tab or window.")
    elsewhere.close()


def test_an_event_stream_ends_when_its_session_logs_out(shared_aikore: AikoreProcess) -> None:
    cookie = _log_in(shared_aikore)
    stream = http.client.HTTPConnection("127.0.0.1", shared_aikore.port, timeout=10)
    stream.request("GET", "/api/events", headers={"Cookie": cookie, "Accept": "text/event-stream"})
    reply = stream.getresponse()
    assert reply.status == 200
    assert reply.readline().startswith(b"event: snapshot")

    out = _post(shared_aikore, "/api/auth/logout", cookie)
    assert out.status == 200
    # Told and ended, not left open until the next keepalive (15 s; this read times out at 10).
    rest = b""
    while line := reply.readline():
        rest += line
    assert b'event: session_ended\ndata: {"reason":"logged-out"}' in rest
    again = http.client.HTTPConnection("127.0.0.1", shared_aikore.port, timeout=10)
    again.request("GET", "/api/events", headers={"Cookie": cookie})
    assert again.getresponse().status == 401


def test_a_wrong_token_in_the_link_is_said_and_not_kept(shared_dashboard: Callable[..., Dashboard]) -> None:
    board = shared_dashboard()
    page = board.page
    page.goto(board.base + "/?view=1&token=not-the-token")
    expect(page).to_have_url(re.compile(r"/login\?"))
    assert "not-the-token" not in page.url
    assert parse_qs(urlsplit(page.url).query)["next"] == ["/?view=1"]
    expect(page.locator("#login-error")).to_contain_text("The token in that link is not right")
    assert page.locator("input[name='next']").get_attribute("value") == "/?view=1"
    page.fill("#secret", TOKEN)
    page.click("button[type='submit']")
    expect(page).to_have_url(board.base + "/?view=1")


def _post(server: AikoreProcess, path: str, cookie: str = "", body: object = None) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    headers = {"Origin": server.base, "Content-Type": "application/json"}
    if cookie:
        headers["Cookie"] = cookie
    conn.request("POST", path, body=json.dumps(body or {}), headers=headers)
    reply = conn.getresponse()
    reply.read()
    return reply


def _log_in(server: AikoreProcess) -> str:
    reply = _post(server, "/api/auth/login", body={"token": TOKEN})
    assert reply.status == 200
    return reply.getheader("Set-Cookie").split(";")[0]
