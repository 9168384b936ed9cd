"""The terminal's websocket passes the same gate as every route: credentials and this origin."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from aikore.app import create_app
from aikore.config import Settings
from aikore.terminal import TERMINALS

TOKEN = "terminal-gate-token-0123456789"


@pytest.fixture
async def gated(aiohttp_client: Callable[..., TestClient], tmp_path: Path) -> TestClient:
    settings = Settings(data_dir=tmp_path / "data", auth="token", token=TOKEN, stop_timeout=5.0)
    return await aiohttp_client(create_app(settings))


async def _refused(client: TestClient, **kwargs: object) -> int:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/api/terminal", **kwargs)  # type: ignore[arg-type]
    return refused.value.status


async def test_without_credentials_no_shell_starts(gated: TestClient) -> None:
    assert await _refused(gated) == 401
    assert await _refused(gated, headers={"Authorization": "Bearer wrong-token-0123456789"}) == 401
    assert gated.app[TERMINALS].list() == []


async def test_a_foreign_origin_is_refused_even_with_the_token(gated: TestClient) -> None:
    status = await _refused(gated, headers={"Authorization": f"Bearer {TOKEN}"}, origin="https://evil.example")
    assert status == 403
    assert gated.app[TERMINALS].list() == []


async def test_with_the_token_the_shell_opens(gated: TestClient) -> None:
    ws = await gated.ws_connect("/api/terminal", headers={"Authorization": f"Bearer {TOKEN}"})
    msg = await ws.receive(timeout=10)
    assert msg.type == aiohttp.WSMsgType.TEXT and '"type": "session"' in msg.data
    await ws.close()
