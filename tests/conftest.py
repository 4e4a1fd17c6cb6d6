"""Shared fixtures: fresh metrics registries, free ports, the shipped models."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from hypothesis import HealthCheck, settings
from prometheus_client import CollectorRegistry

from monitor.core.metrics import Metrics

REPO = Path(__file__).resolve().parents[1]  # the checkout the tests run from

# Property tests (the fuzz tests) run a small budget in `make test` and a large one in
# `make fuzz` (VQM_FUZZ=long). No deadline: a busy CI machine must not turn slowness into
# failures; what the properties check is correctness.
settings.register_profile("default", max_examples=60, deadline=None, derandomize=False)
settings.register_profile(
    "long", max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("long" if os.environ.get("VQM_FUZZ") == "long" else "default")

if TYPE_CHECKING:
    from monitor.inference.models import ModelCache
    from tests.receiver import Receiver


@pytest.fixture(autouse=True)
def data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own data directory (feedback file, sample store), never the user's."""
    path = tmp_path_factory.mktemp("vqm-data")
    monkeypatch.setenv("VQM_DATA_DIR", str(path))
    return path


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
