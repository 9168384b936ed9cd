"""Fixtures for the auth tests: the real app with authentication on (token or password mode)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import DummyCookieJar
from aiohttp.test_utils import TestClient

from aikore.app import create_app
from aikore.config import Settings
from aikore.http.sessions import COOKIE_NAME

TOKEN = "test-token-0123456789abcdef"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def token_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", auth="token", token=TOKEN, stop_timeout=5.0)


@pytest.fixture
def make_client(aiohttp_client: Callable[..., TestClient], token_settings: Settings) -> Callable[..., TestClient]:
    """``await make_client(auth="password", password=...)``: the app with those settings changed."""

    async def make(**changes: object) -> TestClient:
        # No cookie jar: each test sends exactly the cookies it means to.
        return await aiohttp_client(create_app(replace(token_settings, **changes)), cookie_jar=DummyCookieJar())

    return make


@pytest.fixture
async def client(make_client: Callable[..., TestClient]) -> TestClient:
    return await make_client()


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def session_cookie(resp_headers: object) -> str:
    """The aikore_session value from a response's Set-Cookie headers (fails if there is none)."""
    for header in resp_headers.getall("Set-Cookie", []):  # type: ignore[attr-defined]
        name, _, rest = header.partition("=")
        if name == COOKIE_NAME:
            return rest.split(";", 1)[0]
    raise AssertionError("no aikore_session cookie was set")


def origin_of(client: TestClient) -> str:
    return str(client.make_url("/")).rstrip("/")
