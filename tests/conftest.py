"""Shared fixtures: settings on a tmp data dir, an in-process app client, a real aikore process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from aikore.app import create_app
from aikore.config import Settings
from tests.helpers import AikoreProcess, refused_port


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port where connections are refused for the whole test (see ``refused_port``)."""
    with refused_port() as port:
        yield port


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", auth="none", public_ports=range(19001, 19021), stop_timeout=5.0)


@pytest.fixture
async def client(aiohttp_client: Callable[..., TestClient], settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(settings))


@pytest.fixture
def aikore_process(tmp_path: Path) -> Iterator[Callable[..., AikoreProcess]]:
    """Factory: ``aikore_process(extra_args=[...], env={...})`` starts a real aikore and waits for it.

    It binds a port the OS chooses unless ``port`` is given (the same port again, after a stop).
    """
    started: list[AikoreProcess] = []

    def start(extra_args: list[str] | None = None, env: dict[str, str] | None = None, wait: bool = True,
              data_dir: Path | None = None, port: int | None = None) -> AikoreProcess:
        proc = AikoreProcess(
            data_dir=data_dir or tmp_path / "data",
            port=port or 0,
            extra_args=list(extra_args if extra_args is not None else ["--no-auth"]),
            env=dict(env or {}),
        )
        started.append(proc)
        return proc.start(wait=wait)

    yield start
    for proc in started:
        proc.close()
