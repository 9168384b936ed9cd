"""Session fixtures for the container tests: one engine and one image build per test run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.docker.engine import Docker, build_image, open_engine, stand_in_base


@pytest.fixture(scope="session")
def docker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Docker]:
    """The docker CLI on a running engine (started here, and stopped after the run, if none ran)."""
    engine = open_engine(tmp_path_factory.mktemp("dockerd") / "dockerd.log")
    engine.docker.remove_own_and_orphaned_containers()
    try:
        yield engine.docker
    finally:
        engine.docker.remove_own_and_orphaned_containers()
        engine.close()


@pytest.fixture(scope="session")
def image(docker: Docker, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The shipped Dockerfile built on the stand-in base; its layers stay cached in the engine."""
    work = tmp_path_factory.mktemp("image")
    return build_image(docker, stand_in_base(docker, work), work)
