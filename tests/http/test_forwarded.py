"""Client address, host and scheme: from the socket, or from a proxy the operator trusts."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, make_mocked_request

from aikore.config import ConfigError, Settings
from aikore.http.forwarded import Forwarded

from .conftest import TOKEN


class _Transport:
    def __init__(self, peer: str) -> None:
        self._peer = peer

    def get_extra_info(self, name: str, default: object = None) -> object:
        return (self._peer, 40000) if name == "peername" else default


def _peer(trusted: tuple[str, ...], socket_addr: str, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    request = make_mocked_request("GET", "/", headers={"Host": "aikore.lan:9000", **headers},
                                  transport=_Transport(socket_addr))
    return Forwarded(trusted).peer(request)


def test_headers_from_an_untrusted_peer_are_ignored() -> None:
    peer = _peer((), "198.51.100.9", {"X-Forwarded-For": "10.1.1.1", "X-Forwarded-Host": "evil",
                                      "X-Forwarded-Proto": "https"})
    assert (peer.address, peer.host, peer.scheme) == ("198.51.100.9", "aikore.lan:9000", "http")


def test_a_trusted_proxy_names_the_client_host_and_scheme() -> None:
    peer = _peer(("10.0.0.0/8",), "10.0.0.2", {"X-Forwarded-For": "203.0.113.5", "X-Forwarded-Host": "ai.example",
                                               "X-Forwarded-Proto": "https"})
    assert (peer.address, peer.host, peer.scheme) == ("203.0.113.5", "ai.example", "https")


def test_forwarded_for_is_read_from_the_right_past_trusted_hops() -> None:
    # The client can prepend anything; only what our own proxies appended is believed.
    peer = _peer(("10.0.0.0/8",), "10.0.0.2", {"X-Forwarded-For": "1.2.3.4, 203.0.113.5, 10.0.0.3"})
    assert peer.address == "203.0.113.5"
    garbage = _peer(("10.0.0.0/8",), "10.0.0.2", {"X-Forwarded-For": "not-an-ip"})
    assert garbage.address == "10.0.0.2"


@pytest.mark.parametrize("value", ["bogus", "10.0.0.1,", "10.0.0.0/33", "10.0.0.1,localhost"])
def test_bad_trusted_proxies_fail_at_startup_naming_the_value(value: str) -> None:
    if value == "10.0.0.1,":
        assert Settings.from_args([], {"AIKORE_TRUSTED_PROXIES": value}).trusted_proxies == ("10.0.0.1",)
        return
    with pytest.raises(ConfigError, match="AIKORE_TRUSTED_PROXIES"):
        Settings.from_args(["--trusted-proxies", value], {})


async def test_login_page_lets_its_form_return_to_a_public_port(client: TestClient) -> None:
    resp = await client.get("/login?next=http://127.0.0.1:19003/x")
    assert "form-action 'self' http://127.0.0.1:19003;" in resp.headers["Content-Security-Policy"]
    plain = await client.get("/login?next=/app/x/")
    assert "form-action 'self';" in plain.headers["Content-Security-Policy"]
    assert TOKEN not in await plain.text()
