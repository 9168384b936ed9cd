"""Answers for routes that cannot be forwarded (PROXY.md item 19): fixed pages, no echo."""

from __future__ import annotations

import re
import time

import aiohttp

from .conftest import Proxied

HOSTILE = "/%3Cscript%3Ealert(1)%3C/script%3E?q=<img%20src=x%20onerror=alert(1)>"


async def _get(client: aiohttp.ClientSession, url: str) -> tuple[int, str, str]:
    async with client.get(aiohttp.client.URL(url, encoded=True), allow_redirects=False) as resp:
        return resp.status, resp.headers["Content-Type"], await resp.text()


def _assert_no_echo(body: str) -> None:
    assert "script" not in body.lower()
    assert "onerror" not in body.lower()
    assert "alert" not in body.lower()


DASHBOARD_LINK = '<a href="/">Back to the AiKore dashboard</a>'


async def test_unknown_instance_is_a_404_page_linking_back_to_the_dashboard(proxied: Proxied, client) -> None:
    status, ctype, body = await _get(client, f"{proxied.url}/app/nobody{HOSTILE}")
    assert status == 404
    assert ctype.startswith("text/html")
    assert "No such instance" in body
    assert DASHBOARD_LINK in body
    assert "nobody" not in body, "the name comes from the request: never repeated"
    _assert_no_echo(body)


async def test_stopped_instance_is_a_503_page_saying_so(proxied: Proxied, client) -> None:
    proxied.table.set("demo", port=None, state="stopped")
    status, ctype, body = await _get(client, proxied.app_url("demo", HOSTILE))
    assert status == 503
    assert ctype.startswith("text/html")
    assert "not running" in body
    assert "demo is stopped." in body
    assert DASHBOARD_LINK in body
    _assert_no_echo(body)


async def test_a_crashed_instance_is_a_503_saying_it_crashed_with_its_exit_code(proxied: Proxied, client) -> None:
    proxied.table.set("demo", port=proxied.upstream.port, state="error", exit_code=3)
    status, _, body = await _get(client, proxied.app_url("demo", "/echo/"))
    assert status == 503
    assert "not running" in body
    assert "demo crashed with exit code 3." in body
    assert "stopped" not in body
    assert DASHBOARD_LINK in body


async def test_starting_instance_gets_a_self_refreshing_page_until_it_answers(
    proxied: Proxied, client, closed_port: int
) -> None:
    proxied.table.set("demo", port=closed_port, state="starting")
    status, ctype, body = await _get(client, proxied.app_url("demo", HOSTILE))
    assert status == 503
    assert ctype.startswith("text/html")
    assert '<meta http-equiv="refresh"' in body
    assert DASHBOARD_LINK in body
    assert re.search(r"Starting for \d+ s\.", body)
    _assert_no_echo(body)
    # The install phase the script reports, and how long the start has taken.
    proxied.table.set("demo", port=closed_port, state="starting", phase="installing: cloning (40%)",
                      since=time.time() - 75)
    _, _, body = await _get(client, proxied.app_url("demo", "/"))
    assert "Now: installing: cloning (40%)." in body
    assert re.search(r"Starting for 1 min 1[5-9] s\.", body)
    # As soon as the app listens, a starting instance is served normally.
    proxied.table.set("demo", port=proxied.upstream.port, state="starting")
    status, _, _ = await _get(client, proxied.app_url("demo", "/echo/"))
    assert status == 200


async def test_running_instance_that_refuses_is_a_plain_502(proxied: Proxied, client, closed_port: int) -> None:
    proxied.table.set("demo", port=closed_port, state="running")
    status, ctype, body = await _get(client, proxied.app_url("demo", HOSTILE))
    assert status == 502
    assert ctype.startswith("text/plain")
    _assert_no_echo(body)


async def test_refused_websocket_is_a_502_not_an_accepted_socket(proxied: Proxied, client, closed_port: int) -> None:
    proxied.table.set("demo", port=closed_port, state="running")
    url = proxied.app_url("demo", "/ws").replace("http://", "ws://")
    try:
        await client.ws_connect(url)
    except aiohttp.WSServerHandshakeError as exc:
        assert exc.status == 502
    else:
        raise AssertionError("the handshake should have been refused")


async def test_port_only_instance_has_no_path_route(proxied: Proxied, client) -> None:
    proxied.table.set("demo", port=proxied.upstream.port, mode="port-only", state="running")
    status, _, body = await _get(client, proxied.app_url("demo", "/echo/"))
    assert status == 404
    assert "public port" in body
