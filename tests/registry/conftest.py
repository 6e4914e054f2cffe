"""Fixtures for registry tests: a real Docker Distribution registry and pollama servers that talk to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Server, start_server
from tests.registry.distribution import Registry, Unavailable, ensure_installed, start_registry
from tests.registry.helpers import copy, push, server_env


@pytest.fixture(scope="session")
def registry_binary() -> str:
    try:
        return ensure_installed()
    except Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def registry(registry_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    instance = start_registry(tmp_path_factory.mktemp("registry"))
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with the bundled SmolLM2 as smollm2:135m, to push from."""
    directory = tmp_path_factory.mktemp("source")
    server = start_server(directory / "models", directory / "server.log", server_env(directory), bundled=True)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pushed(source: Server, registry: Registry) -> str:
    """smollm2 pushed to the registry as <registry>/library/smol:latest."""
    name = f"{registry.host}/library/smol:latest"
    copy(source, "smollm2:135m", name)
    items = push(source, name)
    assert items[-1] == {"status": "success"}, items
    return name


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Servers with empty stores (or a given one) and their own HOME and DOCKER_CONFIG."""
    started: list[Server] = []

    def factory(models: Path | None = None, docker_config: dict | None = None, bundled: bool = False,
                **extra: str) -> Server:
        directory = tmp_path / f"server{len(started)}"
        directory.mkdir(exist_ok=True)
        env = server_env(directory, docker_config, **extra)
        server = start_server(models or directory / "models", directory / "server.log", env, bundled=bundled)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()
