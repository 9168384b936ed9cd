"""DNS rebinding: state changes (and, without auth, everything) only under AiKore's own Host names.

Without auth, a loopback AiKore answers only to loopback Host names; one on another address to
loopback names, this machine's names, IP addresses and ``--allowed-hosts``. With auth, reading
is left alone (a rebound page has no credentials) but state changes and websockets are not.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable

import pytest
from aiohttp.test_utils import TestClient

from tests.helpers import AikoreProcess

from .conftest import bearer


@pytest.mark.parametrize("host", ["evil.example", "evil.example:9000", "192.168.1.10:9000", "localhost.evil.example"])
async def test_foreign_host_is_refused_without_auth(make_client: Callable[..., TestClient], host: str) -> None:
    client = await make_client(auth="none", token=None)
    resp = await client.get("/api/instances", headers={"Host": host})
    assert resp.status == 403
    assert "Host not allowed" in await resp.text()
    resp = await client.post("/api/instances", json={"name": "x", "blueprint": "demo"}, headers={"Host": host})
    assert resp.status == 403
    assert (await (await client.get("/api/instances")).json()) == []


@pytest.mark.parametrize("host", ["localhost:9000", "127.0.0.1:9000", "[::1]:9000", "app.localhost", "127.0.0.2"])
async def test_loopback_hosts_are_served_without_auth(make_client: Callable[..., TestClient], host: str) -> None:
    client = await make_client(auth="none", token=None)
    assert (await client.get("/api/instances", headers={"Host": host})).status == 200


async def test_token_mode_reads_under_any_host(make_client: Callable[..., TestClient]) -> None:
    # With auth on, reading needs credentials a rebound page does not have.
    client = await make_client()
    resp = await client.get("/api/health", headers={"Host": "aikore.example.org"})
    assert resp.status == 200
    assert (await client.get("/api/instances", headers={**bearer(), "Host": "aikore.example.org"})).status == 200


async def test_token_mode_refuses_state_changes_under_unknown_names(make_client: Callable[..., TestClient]) -> None:
    client = await make_client()
    body = {"name": "x", "blueprint": "demo"}
    resp = await client.post("/api/instances", json=body, headers={**bearer(), "Host": "aikore.example.org"})
    assert resp.status == 403
    assert "--allowed-hosts" in (await resp.json())["error"]["message"]
    named = await make_client(allowed_hosts=("aikore.example.org",))
    resp = await named.post("/api/instances", json=body, headers={**bearer(), "Host": "aikore.example.org"})
    assert resp.status == 201


@pytest.mark.parametrize("host", ["192.168.1.10:9000", "[2001:db8::5]:9000", "localhost:9000"])
async def test_non_loopback_bind_without_auth_serves_addresses_and_loopback_names(
    make_client: Callable[..., TestClient], host: str
) -> None:
    # An IP address cannot be rebound: a page is then really served from it.
    client = await make_client(auth="none", token=None, host="0.0.0.0")
    assert (await client.get("/api/instances", headers={"Host": host})).status == 200


async def test_non_loopback_bind_without_auth_refuses_unknown_names(make_client: Callable[..., TestClient]) -> None:
    client = await make_client(auth="none", token=None, host="0.0.0.0")
    resp = await client.get("/api/instances", headers={"Host": "rebind.attacker.example:9000"})
    assert resp.status == 403
    assert "--allowed-hosts" in await resp.text()


async def test_allowed_hosts_adds_names(make_client: Callable[..., TestClient]) -> None:
    client = await make_client(auth="none", token=None, host="0.0.0.0", allowed_hosts=("gpu-box.lan", ".lab.example"))
    for host in ("gpu-box.lan:9000", "lab.example", "ai.lab.example:9000"):
        assert (await client.get("/api/instances", headers={"Host": host})).status == 200, host
    assert (await client.get("/api/instances", headers={"Host": "evil-lab.example"})).status == 403


def _as_rebound_page(proc: AikoreProcess, method: str, path: str, body: object = None,
                     host: str = "rebind.attacker.example") -> int:
    """A request as a page of ``host`` sends it once that name resolves to AiKore's address."""
    conn = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=30)
    here = f"{host}:{proc.port}"
    headers = {"Host": here, "Origin": f"http://{here}", "Content-Type": "application/json"}
    if path.endswith("/ws"):
        headers.update({"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def test_a_rebound_page_cannot_drive_a_no_auth_aikore_on_all_interfaces(
    aikore_process: Callable[..., AikoreProcess],
) -> None:
    # The Docker bind without auth: the attack that created, scripted and started an instance.
    proc = aikore_process(extra_args=["--no-auth", "--host", "0.0.0.0"])
    assert _as_rebound_page(proc, "POST", "/api/instances", {"name": "pwn", "blueprint": "demo"}) == 403
    assert _as_rebound_page(proc, "GET", "/api/instances") == 403
    made = proc.request("POST", "/api/instances", {"name": "mine", "blueprint": "demo"})
    assert made.status == 201
    iid = made.json()["id"]
    assert _as_rebound_page(proc, "PUT", f"/api/instances/{iid}/script", {"content": "echo pwned"}) == 403
    assert _as_rebound_page(proc, "POST", f"/api/instances/{iid}/start") == 403
    assert _as_rebound_page(proc, "GET", "/app/mine/ws") == 403
    assert _as_rebound_page(proc, "GET", f"/api/instances/{iid}/script") == 403
    assert proc.request("GET", f"/api/instances/{iid}").json()["status"] == "stopped"
    assert "pwned" not in proc.request("GET", f"/api/instances/{iid}/script").json()["content"]
    # Addressed by IP (the way a LAN reaches a container), the same requests work.
    assert _as_rebound_page(proc, "GET", "/api/instances", host="127.0.0.1") == 200
