"""A real Alertmanager accepts vqm's alerts, shows them with the right labels, and resolves
them; it has them back after a restart (vqm re-sends), and every member of an HA list gets
them."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from alerting.models import Alert, AlertEvent, AlertState, AlertTransition
from alerting.notifiers.alertmanager import AlertmanagerConfig, AlertmanagerNotifier
from alerting.notifiers.routing import Route, Router
from alerting.resend import Resender
from alerting.store import AlertStore
from monitor.core.state import MemoryStateStore
from tests.conftest import free_port
from tests.integration.conftest import Service

pytestmark = pytest.mark.integration

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
if BINARY is None and os.access("/usr/bin/prometheus-alertmanager", os.X_OK):
    BINARY = "/usr/bin/prometheus-alertmanager"

MINIMAL_CONFIG = """\
route:
  receiver: blackhole
  group_wait: 1s
receivers:
  - name: blackhole
"""


def start_alertmanager(workdir: Path, port: int) -> Service:
    """An Alertmanager on ``port``, clustering off, state under ``workdir``, once it is ready.

    Starting it again on the same ``workdir`` is a restart: silences and the notification
    log come back from disk, alerts do not (Alertmanager keeps them in memory).
    """
    if BINARY is None:
        pytest.skip(
            "prometheus-alertmanager is not installed (Debian package 'prometheus-alertmanager'; "
            "`make system-deps` installs it)"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "alertmanager.yml").write_text(MINIMAL_CONFIG)
    cmd = [
        BINARY,
        f"--config.file={workdir / 'alertmanager.yml'}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]
    service = Service(cmd, port, workdir / "alertmanager.log", "alertmanager")
    _wait_ready(service, f"http://127.0.0.1:{port}", timeout=20)
    return service


def _wait_ready(service: Service, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and service.poll() is None:
        try:
            if httpx.get(f"{url}/-/ready", timeout=0.5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    service.stop()
    pytest.fail(
        f"alertmanager not ready on {url} within {timeout}s (exit code {service.returncode}); "
        f"its log:\n{service.log_text()}"
    )


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of an Alertmanager shared by the module's tests."""
    service = start_alertmanager(tmp_path_factory.mktemp("alertmanager"), free_port())
    try:
        yield f"http://127.0.0.1:{service.port}"
    finally:
        service.stop()


@pytest.fixture
def alertmanagers(tmp_path: Path) -> Iterator[list[Service]]:
    """Two Alertmanagers of this test's own (a test may stop and restart them)."""
    services = [start_alertmanager(tmp_path / f"am{i}", free_port()) for i in range(2)]
    yield services
    for service in services:
        service.stop()


def _url(service: Service) -> str:
    return f"http://127.0.0.1:{service.port}"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


def _alert(alert_id: str) -> Alert:
    now = time.time()
    return Alert(
        id=alert_id,
        channel_id="news",
        detector="audio_artifact",
        label="hum",
        severity="major",
        start=10.0,
        end=16.0,
        confidence=0.97,
        opened_at=now - 5,
        updated_at=now,
        summary="Hum on news",
    )


async def _ours(client: httpx.AsyncClient, url: str, alert_id: str) -> list[dict[str, Any]]:
    response = await client.get(
        f"{url}/api/v2/alerts", params={"filter": f'alert_id="{alert_id}"'}, timeout=5
    )
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


async def _until(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.1)


async def test_an_alert_posted_through_the_notifier_is_active_with_its_labels_then_resolves(
    alertmanager: str, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    notifier = AlertmanagerNotifier(
        "am",
        AlertmanagerConfig(url=alertmanager, extra_labels={"site": "lab"}),
        client,
    )
    alert = _alert(f"news:audio_artifact:{tmp_path.name}")
    await notifier.send(AlertEvent(transition=AlertTransition.OPENED, alert=alert))

    async def active() -> list[dict[str, Any]]:
        found = await _ours(client, alertmanager, alert.id)
        return [a for a in found if a["status"]["state"] == "active"]

    [shown] = await _until(active)
    assert shown["labels"] == {
        "alertname": "VqmAudioArtifact",
        "channel": "news",
        "detector": "audio_artifact",
        "label": "hum",
        "severity": "major",
        "alert_id": alert.id,
        "site": "lab",
    }
    assert shown["annotations"]["summary"] == "Hum on news"

    done = alert.model_copy(update={"state": AlertState.RESOLVED, "resolved_at": time.time()})
    await notifier.send(AlertEvent(transition=AlertTransition.RESOLVED, alert=done))

    async def gone() -> bool:
        return not await _ours(client, alertmanager, alert.id)

    assert await _until(gone), "the resolved alert is still listed as firing"


async def _firing(client: httpx.AsyncClient, url: str, alert_id: str) -> list[dict[str, Any]]:
    return [a for a in await _ours(client, url, alert_id) if a["status"]["state"] == "active"]


@contextlib.asynccontextmanager
async def resending(store: AlertStore, config: AlertmanagerConfig) -> AsyncIterator[None]:
    """vqm's resender re-sending ``store``'s alerts to ``config``'s Alertmanagers."""
    async with httpx.AsyncClient() as http:
        router = Router(
            {"am": AlertmanagerNotifier("am", config, http)},
            [Route(severities=["major"], notifiers=["am"])],
        )
        stop = asyncio.Event()
        task = asyncio.create_task(Resender(store, router).run(stop))
        try:
            yield
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)


async def test_a_restarted_alertmanager_has_the_open_alert_back_after_a_resend(
    alertmanagers: list[Service], client: httpx.AsyncClient, tmp_path: Path
) -> None:
    am = alertmanagers[0]
    store = AlertStore(MemoryStateStore())
    alert = _alert(f"restart:{tmp_path.name}")
    await store.put_active(alert)
    config = AlertmanagerConfig(url=_url(am), resend_interval=0.5)
    async with resending(store, config):
        [shown] = await _until(lambda: _firing(client, _url(am), alert.id))
        ends_in = dt.datetime.fromisoformat(shown["endsAt"]).timestamp() - time.time()
        assert 0 < ends_in <= 4 * 0.5 + 1, "a firing alert should expire a few resends ahead"

        am.stop()  # Alertmanager keeps alerts in memory: the restarted one has none ...
        restarted = start_alertmanager(am.log.parent, am.port)
        alertmanagers.append(restarted)
        # ... until the next re-send brings it back.
        assert await _until(lambda: _firing(client, _url(restarted), alert.id)), (
            "the open alert did not come back after the restart"
        )


async def test_two_alertmanagers_of_an_ha_list_both_receive_the_alert_and_its_resolve(
    alertmanagers: list[Service], client: httpx.AsyncClient, tmp_path: Path
) -> None:
    urls = [_url(am) for am in alertmanagers]
    notifier = AlertmanagerNotifier("am", AlertmanagerConfig(urls=urls), client)
    alert = _alert(f"ha:{tmp_path.name}")
    await notifier.send(AlertEvent(transition=AlertTransition.OPENED, alert=alert))
    for url in urls:
        assert await _until(lambda url=url: _firing(client, url, alert.id)), url

    done = alert.model_copy(update={"state": AlertState.RESOLVED, "resolved_at": time.time()})
    await notifier.send(AlertEvent(transition=AlertTransition.RESOLVED, alert=done))
    for url in urls:

        async def gone(url: str = url) -> bool:
            return not await _firing(client, url, alert.id)

        assert await _until(gone), url
