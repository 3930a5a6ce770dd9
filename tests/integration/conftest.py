"""Real servers for the integration tests, started once per test session on free ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import Server, kafka_broker, redis_server


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with kafka_broker(tmp_path_factory.mktemp("broker")) as server:
        yield server


@pytest.fixture(scope="session")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server
