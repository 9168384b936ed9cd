"""AiKore's own credentials never reach an instance, by any method or entry point, nor any log.

A real ``aikore`` runs the demo app, which logs every request line it receives (query included)
to its instance log and echoes the headers it got at ``/info``. Requests carry the token as
``?token=``, as a bearer header and the session cookie, in every way a client can combine them.
"""

from __future__ import annotations

import asyncio
import http.client
import json
from collections.abc import Callable, Iterator

import aiohttp
import pytest

from aikore.http.sessions import COOKIE_NAME
from tests.helpers import AikoreProcess, Response, free_port, wait_until

TOKEN = "leak-probe-token-0123456789abcdef"
WS_HEADERS = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
              "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


class Demo:
    """A real aikore with the demo instance running under /app/leaky/ and on its public port."""

    def __init__(self, proc: AikoreProcess, public_port: int, iid: int, cookie: str) -> None:
        self.proc = proc
        self.public_port = public_port
        self.iid = iid
        self.cookie = cookie

    def base(self, where: str) -> tuple[int, str]:
        """(port, path prefix) of an entry point."""
        return (self.proc.port, "/app/leaky") if where == "main" else (self.public_port, "")

    def origin(self, where: str) -> str:
        return f"http://127.0.0.1:{self.base(where)[0]}"

    def send(self, where: str, method: str, path: str, headers: dict[str, str], body: bytes | None = None) -> Response:
        port, prefix = self.base(where)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request(method, prefix + path, body=body, headers={"Origin": self.origin(where), **headers})
            resp = conn.getresponse()
            return Response(resp.status, resp.read(), resp.headers)  # type: ignore[arg-type]
        finally:
            conn.close()

    def instance_log(self) -> str:
        """Every file the instance's log folder holds, as text."""
        folder = self.proc.data_dir / "instances" / "leaky" / "logs"
        return "\n".join(p.read_text(errors="replace") for p in sorted(folder.rglob("*")) if p.is_file())


@pytest.fixture
def demo(aikore_process: Callable[..., AikoreProcess]) -> Iterator[Demo]:
    public_port = free_port()
    proc = aikore_process(extra_args=["--token", TOKEN, "--public-ports", f"{public_port}-{public_port}"])
    proc.token = TOKEN
    created = proc.request("POST", "/api/instances", {"name": "leaky", "blueprint": "demo", "public_port": public_port})
    assert created.status == 201, created.body
    iid = created.json()["id"]
    assert proc.request("POST", f"/api/instances/{iid}/start").status in (200, 202)
    wait_until(lambda: proc.request("GET", "/app/leaky/health").status == 200, timeout=60, what="the demo app")
    wait_until(lambda: _status(public_port, "/health") == 200, what="the public port")
    login = proc.request("POST", "/api/auth/login", {"token": TOKEN}, auth=False)
    cookie = login.headers["Set-Cookie"].split(";", 1)[0].split("=", 1)[1]
    yield Demo(proc, public_port, iid, cookie)


def _status(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
        return conn.getresponse().status
    finally:
        conn.close()


def _credentials(demo: Demo, how: str) -> dict[str, str]:
    """The headers of a client authenticated ``how``."""
    if how == "bearer":
        return {"Authorization": f"Bearer {TOKEN}"}
    if how == "cookie":
        return {"Cookie": f"theme=dark; {COOKIE_NAME}={demo.cookie}"}
    return {}


@pytest.mark.parametrize("where", ["main", "public"])
def test_no_method_entry_point_or_credential_reaches_the_app_or_its_log(demo: Demo, where: str) -> None:
    probes: list[str] = []
    for how in ("query", "bearer", "cookie"):
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            probe = f"probe-{where}-{how}-{method}"
            probes.append(probe)
            body = b"x" * 100 if method in ("POST", "PUT", "PATCH") else None
            resp = demo.send(where, method, f"/info?{probe}=1&token={TOKEN}&tail=1", _credentials(demo, how), body)
            if (how, method) == ("query", "GET"):
                # A page with ?token= is traded for a cookie and sent back without it; the app gets nothing.
                assert resp.status == 302 and TOKEN not in resp.headers["Location"]
                probes.pop()
                continue
            assert resp.status in (200, 405), (probe, resp.status, resp.body[:200])
            if resp.status == 200:
                seen = resp.json()
                assert TOKEN not in json.dumps(seen) and demo.cookie not in json.dumps(seen), probe
                assert seen["path"] == f"/info?{probe}=1&tail=1"
        # The upgrade, with each credential.
        probe = f"probe-{where}-{how}-ws"
        probes.append(probe)
        assert asyncio.run(_ws_echo(demo, where, f"/ws?{probe}=1&token={TOKEN}", _credentials(demo, how)))

    def all_logged() -> bool:
        text = demo.instance_log()
        return all(p in text for p in probes)

    wait_until(all_logged, what="every probe in the demo app's access log")
    log = demo.instance_log()
    assert TOKEN not in log
    assert demo.cookie not in log


async def _ws_echo(demo: Demo, where: str, path: str, headers: dict[str, str]) -> bool:
    port, prefix = demo.base(where)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http_session:
        async with http_session.ws_connect(f"ws://127.0.0.1:{port}{prefix}{path}", headers=headers,
                                           origin=demo.origin(where)) as ws:
            await ws.send_str("echo")
            return await ws.receive_str(timeout=30) == "echo"


def test_the_session_cookie_is_taken_out_however_cookies_are_separated(demo: Demo) -> None:
    # Split exactly as the gate's parser splits: what it read as the session never goes on.
    for where in ("main", "public"):
        for separator in (" ", ", ", "\t", ";", "; "):
            resp = demo.send(where, "GET", "/info", {"Cookie": f"a=1{separator}{COOKIE_NAME}={demo.cookie}"})
            assert resp.status == 200, (where, separator)
            seen = resp.json()["headers"]
            assert demo.cookie not in json.dumps(seen), (where, separator)
            assert seen.get("Cookie", "").startswith("a=1")


def test_client_address_headers_are_dropped_like_x_forwarded(demo: Demo) -> None:
    claims = {"X-Real-IP": "6.6.6.6", "True-Client-IP": "6.6.6.6", "X-Client-IP": "6.6.6.6", "Client-IP": "6.6.6.6",
              "Forwarded-For": "6.6.6.6", "X_Forwarded_For": "6.6.6.6", "X_Forwarded_Host": "evil.example",
              "X-Forwarded-Prefix": "/evil", "Forwarded": "for=6.6.6.6"}
    for where in ("main", "public"):
        resp = demo.send(where, "GET", "/info", {**_credentials(demo, "bearer"), **claims})
        assert resp.status == 200
        seen = resp.json()["headers"]
        assert "6.6.6.6" not in json.dumps(seen) and "evil" not in json.dumps(seen), where
        assert seen["X-Forwarded-For"] == "127.0.0.1"


def test_aikores_own_output_holds_the_token_only_in_the_login_url(demo: Demo) -> None:
    # Wrong tokens, right ones, in every place: AiKore logs none of them.
    for token in (TOKEN, "wrong-" + TOKEN):
        demo.send("main", "GET", f"/info?token={token}", {"Authorization": f"Bearer {token}"})
        demo.send("public", "POST", f"/info?token={token}", {"Cookie": f"{COOKIE_NAME}={token}"})
    lines = [line for line in demo.proc.output().splitlines() if TOKEN in line or demo.cookie in line]
    assert [line.split(": ", 1)[0] for line in lines] == ["AiKore login URL"]


def test_a_bad_upgrade_is_answered_400_without_contacting_the_app(demo: Demo) -> None:
    bearer = _credentials(demo, "bearer")
    no_connection = {k: v for k, v in WS_HEADERS.items() if k != "Connection"}
    for where in ("main", "public"):
        resp = demo.send(where, "GET", f"/ws?probe-bad-upgrade-{where}=1", {**bearer, **no_connection})
        assert resp.status == 400
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert demo.send(where, "GET", f"/info?probe-after-{where}=1", bearer).status == 200
    wait_until(lambda: "probe-after-public" in demo.instance_log(), what="the requests after it in the app's log")
    assert "probe-bad-upgrade" not in demo.instance_log()
