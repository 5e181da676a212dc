from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator

import pytest

from tests.server.harness import MINIMAL_CONFIG, ServerProcess


@pytest.fixture
def server_factory(tmp_path: pathlib.Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start servers in a temporary directory; every one is stopped at the end of the test."""
    started: list[ServerProcess] = []

    def start(*args: str, config: str = MINIMAL_CONFIG, wait_ready: bool = True, tmp=None) -> ServerProcess:
        directory = tmp or tmp_path
        directory.mkdir(parents=True, exist_ok=True)
        server = ServerProcess(directory, list(args))
        if not server.config_path.exists() or config is not MINIMAL_CONFIG:
            server.config_path.write_text(config)
        started.append(server)
        return server.start(wait_ready=wait_ready)

    yield start
    for server in started:
        server.stop()
