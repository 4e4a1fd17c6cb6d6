"""Fixtures of the ingest tests: a local origin and a follower harness on it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from tests.unit.stream_ingest.origin import Harness, Origin


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    server = Origin()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def harness(origin: Origin) -> AsyncIterator[Harness]:
    h = Harness(origin)
    yield h
    h.stop.set()
    if h.task is not None:
        started = time.monotonic()
        await asyncio.wait_for(h.task, timeout=2)
        assert time.monotonic() - started < 1.0, "the follower took over a second to stop"
