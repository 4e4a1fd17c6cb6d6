"""Shared fixtures: fresh metrics registries, free ports."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx
import pytest
from prometheus_client import CollectorRegistry

from monitor.core.metrics import Metrics

if TYPE_CHECKING:
    from tests.receiver import Receiver


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
