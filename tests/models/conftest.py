"""Fixtures: a loopback file server and an in-process AiKore whose HF/CivitAI endpoints point at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from aiohttp.test_utils import TestClient

from aikore.app import create_app
from aikore.config import Settings
from tests.models.fileserver import FileServer


@pytest.fixture
def files() -> Iterator[FileServer]:
    server = FileServer().start()
    yield server
    server.stop()


@pytest.fixture
async def models_client(
    aiohttp_client: Callable[..., TestClient], settings: Settings, files: FileServer, monkeypatch: pytest.MonkeyPatch
) -> TestClient:
    monkeypatch.setenv("AIKORE_HF_ENDPOINT", files.base)
    monkeypatch.setenv("AIKORE_CIVITAI_ENDPOINT", files.base)
    return await aiohttp_client(create_app(settings))
