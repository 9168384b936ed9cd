"""HTTP forwarding against a real upstream (PROXY.md items 2-18)."""

from __future__ import annotations

import asyncio
import hashlib
import os

import aiohttp
import pytest
from aiohttp import web

import proxy
from tests.helpers import until

from .conftest import Proxied
from .upstream import DOWNLOADS_CUT, GZIP_BODY, SSE_GATE

pytestmark = pytest.mark.asyncio


def _headers(echoed: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in echoed["headers"]:
        out.setdefault(name.lower(), []).append(value)
    return out


async def _echo(client: aiohttp.ClientSession, url: str, **kwargs) -> dict:
    async with client.get(url, **kwargs) as resp:
        assert resp.status == 200
        return await resp.json()


async def test_strip_prefix_sends_the_path_below_the_mount(proxied: Proxied, client) -> None:
    seen = await _echo(client, proxied.app_url("demo", "/echo/a/b?x=1"))
    assert seen["raw_path"] == "/echo/a/b?x=1"


async def test_keep_prefix_sends_the_whole_path(proxied: Proxied, client) -> None:
    proxied.table.set("kept", port=proxied.upstream.port, mode="keep-prefix", state="running")
    seen = await _echo(client, proxied.app_url("kept", "/echo/x?y=1"))
    assert seen["raw_path"] == "/app/kept/echo/x?y=1"


async def test_routes_match_whole_segments_only(proxied: Proxied, client) -> None:
    async with client.get(f"{proxied.url}/app/demox/echo/") as resp:
        assert resp.status == 404
    async with client.get(f"{proxied.url}/app/dem/echo/") as resp:
        assert resp.status == 404


async def test_mount_without_slash_redirects_to_the_mount_root(proxied: Proxied, client) -> None:
    async with client.get(f"{proxied.url}/app/demo?a=1&b=2", allow_redirects=False) as resp:
        assert resp.status == 307
        assert resp.headers["Location"] == "/app/demo/?a=1&b=2"


async def test_encoded_slash_and_query_order_pass_unchanged(proxied: Proxied, client) -> None:
    url = proxied.app_url("demo", "/echo/a%2Fb/c%20d?z=1&a=2&z=0&e=%2F")
    seen = await _echo(client, aiohttp.client.URL(url, encoded=True))
    assert seen["raw_path"] == "/echo/a%2Fb/c%20d?z=1&a=2&z=0&e=%2F"


async def test_host_is_kept_and_forwarded_headers_are_authoritative(proxied: Proxied, client) -> None:
    seen = _headers(
        await _echo(
            client,
            proxied.app_url("demo", "/echo/"),
            headers={
                "Host": "box.example:8443",
                "X-Forwarded-For": "6.6.6.6",
                "X-Forwarded-Prefix": "<script>alert(1)</script>",
                "X-Forwarded-Host": "evil",
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Whatever": "1",
                "Forwarded": "for=6.6.6.6",
            },
        )
    )
    assert seen["host"] == ["box.example:8443"]
    assert seen["x-forwarded-for"] == ["127.0.0.1"]
    assert seen["x-forwarded-host"] == ["box.example:8443"]
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["x-forwarded-prefix"] == ["/app/demo"]
    assert "x-forwarded-whatever" not in seen
    assert "forwarded" not in seen


async def test_hop_by_hop_request_headers_are_stripped(proxied: Proxied, client) -> None:
    seen = _headers(
        await _echo(
            client,
            proxied.app_url("demo", "/echo/"),
            headers={
                "Connection": "keep-alive, X-Session-Only",
                "X-Session-Only": "1",
                "Keep-Alive": "timeout=5",
                "TE": "trailers",
                "Proxy-Authorization": "Basic eA==",
                "X-End-To-End": "kept",
            },
        )
    )
    for name in ("x-session-only", "keep-alive", "te", "proxy-authorization"):
        assert name not in seen
    assert seen["x-end-to-end"] == ["kept"]


async def test_hop_by_hop_response_headers_are_stripped(proxied: Proxied, client) -> None:
    async with client.get(proxied.app_url("demo", "/hop")) as resp:
        assert resp.status == 200
        assert "X-Private" not in resp.headers
        assert "Keep-Alive" not in resp.headers


async def test_only_the_browsers_accept_encoding_is_forwarded(proxied: Proxied, client) -> None:
    seen = _headers(await _echo(client, proxied.app_url("demo", "/echo/"), skip_auto_headers=["Accept-Encoding"]))
    assert "accept-encoding" not in seen
    assert "user-agent" not in seen or seen["user-agent"][0].startswith("Python/")
    seen = _headers(await _echo(client, proxied.app_url("demo", "/echo/"), headers={"Accept-Encoding": "br"}))
    assert seen["accept-encoding"] == ["br"]


async def test_gzip_bodies_pass_through_byte_for_byte(proxied: Proxied, client) -> None:
    async with client.get(proxied.app_url("demo", "/gzip")) as resp:
        body = await resp.read()
        assert resp.headers["Content-Encoding"] == "gzip"
        assert resp.headers["Content-Length"] == str(len(GZIP_BODY))
        assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert body == GZIP_BODY


async def test_repeated_set_cookie_headers_are_all_kept(proxied: Proxied, client) -> None:
    async with client.get(proxied.app_url("demo", "/cookies")) as resp:
        cookies = resp.headers.getall("Set-Cookie")
        assert resp.headers["Content-Type"] == "text/plain; charset=iso-8859-1"
    assert [c.split(";")[0] for c in cookies] == ["a=1", "b=2"]


async def test_upstream_cookies_are_never_replayed_to_another_browser(proxied: Proxied, client) -> None:
    async with client.get(proxied.app_url("demo", "/cookies")):
        pass
    async with aiohttp.ClientSession() as stranger:
        seen = _headers(await _echo(stranger, proxied.app_url("demo", "/echo/")))
    assert "cookie" not in seen


async def test_large_headers_pass_both_ways(proxied: Proxied, client) -> None:
    big = "k=" + "v" * 30000
    seen = _headers(await _echo(client, proxied.app_url("demo", "/echo/"), headers={"Cookie": big}))
    assert seen["cookie"] == [big]
    async with client.get(proxied.app_url("demo", "/cookies?big=1")) as resp:
        assert resp.status == 200
        assert any(c.startswith("big=xxx") for c in resp.headers.getall("Set-Cookie"))


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("/login", "/app/demo/login"),
        ("/app/demo/already", "/app/demo/already"),
        ("relative/path", "relative/path"),
        ("https://elsewhere.example/x", "https://elsewhere.example/x"),
    ],
)
async def test_redirects_stay_inside_the_mount(proxied: Proxied, client, location: str, expected: str) -> None:
    url = proxied.app_url("demo", "/redirect")
    async with client.get(url, params={"to": location}, allow_redirects=False) as resp:
        assert resp.status == 302
        assert resp.headers["Location"] == expected


async def test_redirect_to_the_upstreams_own_address_becomes_a_mounted_path(proxied: Proxied, client) -> None:
    target = f"http://127.0.0.1:{proxied.upstream.port}/next?a=1"
    async with client.get(proxied.app_url("demo", "/redirect"), params={"to": target}, allow_redirects=False) as resp:
        assert resp.headers["Location"] == "/app/demo/next?a=1"


async def test_keep_prefix_redirects_are_left_alone(proxied: Proxied, client) -> None:
    proxied.table.set("kept", port=proxied.upstream.port, mode="keep-prefix", state="running")
    url = proxied.app_url("kept", "/redirect")
    async with client.get(url, params={"to": "/app/kept/lab"}, allow_redirects=False) as resp:
        assert resp.headers["Location"] == "/app/kept/lab"
    target = f"http://localhost:{proxied.upstream.port}/app/kept/tree?x=1#top"
    async with client.get(url, params={"to": target}, allow_redirects=False) as resp:
        assert resp.headers["Location"] == "/app/kept/tree?x=1#top"


async def test_streamed_upload_keeps_content_length_and_arrives_whole(proxied: Proxied, client) -> None:
    body = os.urandom(8 * 1024 * 1024)
    async with client.post(proxied.app_url("demo", "/upload"), data=body) as resp:
        seen = await resp.json()
    assert seen["size"] == len(body)
    assert seen["sha256"] == hashlib.sha256(body).hexdigest()
    assert seen["content_length"] == str(len(body))
    assert seen["transfer_encoding"] is None


async def test_chunked_upload_stays_chunked(proxied: Proxied, client) -> None:
    parts = [os.urandom(300_000) for _ in range(5)]

    async def gen():
        for part in parts:
            yield part

    async with client.post(proxied.app_url("demo", "/upload"), data=gen()) as resp:
        seen = await resp.json()
    assert seen["size"] == sum(map(len, parts))
    assert seen["sha256"] == hashlib.sha256(b"".join(parts)).hexdigest()
    assert seen["transfer_encoding"] == "chunked"
    assert seen["content_length"] is None


async def test_bodiless_request_sends_no_body_headers(proxied: Proxied, client) -> None:
    seen = _headers(await _echo(client, proxied.app_url("demo", "/echo/")))
    assert "content-length" not in seen
    assert "transfer-encoding" not in seen


async def test_large_download_streams_whole(proxied: Proxied, client) -> None:
    size = 32 * 1024 * 1024 + 17
    digest = hashlib.sha256()
    async with client.get(proxied.app_url("demo", "/download"), params={"size": size}) as resp:
        assert resp.headers["Content-Length"] == str(size)
        async for chunk in resp.content.iter_any():
            digest.update(chunk)
    block = bytes(range(256)) * 256
    expected = hashlib.sha256()
    left = size
    while left:
        piece = block[: min(left, len(block))]
        expected.update(piece)
        left -= len(piece)
    assert digest.hexdigest() == expected.hexdigest()


async def test_head_keeps_content_length_without_a_body(proxied: Proxied, client) -> None:
    async with client.head(proxied.app_url("demo", "/head")) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Length"] == "12345"
        assert await resp.read() == b""


@pytest.mark.parametrize("code", [204, 304])
async def test_no_body_statuses_have_no_body(proxied: Proxied, client, code: int) -> None:
    async with client.get(proxied.app_url("demo", f"/status/{code}")) as resp:
        assert resp.status == code
        assert resp.headers["ETag"] == '"v1"'
        assert await resp.read() == b""
    # The connection is still usable afterwards: no stray body bytes were left on it.
    assert (await _echo(client, proxied.app_url("demo", "/echo/")))["method"] == "GET"


async def test_sse_events_arrive_before_the_stream_ends(proxied: Proxied, client) -> None:
    async with client.get(proxied.app_url("demo", "/sse")) as resp:
        assert resp.headers["Content-Type"] == "text/event-stream"
        assert resp.headers["X-Accel-Buffering"] == "no"
        first = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 30)
        assert first == b"data: first\n\n"
        proxied.upstream.app[SSE_GATE].set()
        second = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 30)
        assert second == b"data: second\n\n"


async def test_slow_bodies_are_not_cut_by_a_timeout(proxied: Proxied, client) -> None:
    assert proxied.session.timeout.total is None
    async with client.get(proxied.app_url("demo", "/slow"), params={"n": "4", "gap": "0.7"}) as resp:
        assert await resp.read() == b"0\n1\n2\n3\n"


@pytest.mark.parametrize("mode", ["length", "chunked"])
async def test_upstream_failure_mid_body_aborts_the_client(proxied: Proxied, client, mode: str) -> None:
    async with client.get(proxied.app_url("demo", "/truncated"), params={"mode": mode}) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()


async def test_many_long_streams_do_not_starve_new_requests(proxied: Proxied, client) -> None:
    assert proxied.session.connector is not None
    assert proxied.session.connector.limit == 0
    streams = []
    try:
        for _ in range(110):
            resp = await client.get(proxied.app_url("demo", "/hold"))
            await resp.content.readuntil(b"\n\n")
            streams.append(resp)
        seen = await asyncio.wait_for(_echo(client, proxied.app_url("demo", "/echo/")), 30)
        assert seen["method"] == "GET"
    finally:
        proxied.upstream.app[SSE_GATE].set()
        for resp in streams:
            resp.close()


async def test_a_peer_resolver_sets_the_forwarded_headers(proxied: Proxied, client, aiohttp_server) -> None:
    # AiKore behind a trusted TLS proxy resolves the real client; the upstream must see that.
    def behind_tls(request) -> proxy.DirectPeer:
        return proxy.DirectPeer("203.0.113.9", "ai.example", "https")

    app = web.Application()
    proxy.add_app_routes(
        app.router, proxy.path_handler(proxied.table, proxied.session, peer=behind_tls, pool=proxied.pool)
    )
    server = await aiohttp_server(app)
    seen = _headers(await _echo(client, str(server.make_url("/app/demo/echo/"))))
    assert seen["x-forwarded-for"] == ["203.0.113.9"]
    assert seen["x-forwarded-host"] == ["ai.example"]
    assert seen["x-forwarded-proto"] == ["https"]
    url = str(server.make_url("/app/demo/redirect"))
    async with client.get(url, params={"to": "https://ai.example/next"}, allow_redirects=False) as resp:
        assert resp.headers["Location"] == "/app/demo/next"


async def test_utf8_header_values_are_not_mangled(proxied: Proxied, client) -> None:
    async with client.get(proxied.app_url("demo", "/utf8"), headers={"X-Name": "naïve €"}) as resp:
        assert resp.headers["X-Name"] == "café ünïcode"
        assert await resp.text() == "naïve €"


async def test_browser_leaving_mid_download_stops_the_upstream_stream(proxied: Proxied, client) -> None:
    size = 256 * 1024 * 1024
    resp = await client.get(proxied.app_url("demo", "/download"), params={"size": size})
    await resp.content.readexactly(1024 * 1024)
    resp.close()  # the browser tab closes mid-download
    cut = proxied.upstream.app[DOWNLOADS_CUT]
    # The proxy drops its upstream connection instead of draining (or pooling) a dead stream.
    await until(lambda: cut, what="the upstream to stop streaming")
    assert cut[0] < size
    seen = await _echo(client, proxied.app_url("demo", "/echo/after"))
    assert seen["raw_path"] == "/echo/after"
