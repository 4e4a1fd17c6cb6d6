"""Shared fixtures: fresh metrics registries, free ports."""

from __future__ import annotations

import socket

import pytest
from prometheus_client import CollectorRegistry

from monitor.metrics import Metrics


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
