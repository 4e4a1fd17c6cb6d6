"""Shared fixtures: fresh metrics registries, free ports, the shipped models."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from prometheus_client import CollectorRegistry

from monitor.core.metrics import Metrics

REPO = Path(__file__).resolve().parents[1]  # the checkout the tests run from

if TYPE_CHECKING:
    from monitor.inference.models import ModelCache
    from tests.receiver import Receiver


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def models() -> ModelCache:
    """The shipped models, loaded once for the session (as a runtime shares them between
    channels); tests that damage a model use a cache of their own on a copy."""
    from monitor.inference.models import ModelCache

    return ModelCache()


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A local HTTP receiver (pager, webhook, Alertmanager stand-in) on a free port."""
    from tests.receiver import Receiver

    rx = Receiver()
    await rx.start()
    yield rx
    await rx.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c
