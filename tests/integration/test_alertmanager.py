"""A real Alertmanager accepts vqm's alerts, shows them with the right labels, and resolves them."""

from __future__ import annotations

import asyncio
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


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of an Alertmanager on a free port, clustering off, state in a temp dir."""
    if BINARY is None:
        pytest.skip(
            "prometheus-alertmanager is not installed (Debian package 'prometheus-alertmanager'; "
            "`make system-deps` installs it)"
        )
    workdir = tmp_path_factory.mktemp("alertmanager")
    (workdir / "alertmanager.yml").write_text(MINIMAL_CONFIG)
    port = free_port()
    cmd = [
        BINARY,
        f"--config.file={workdir / 'alertmanager.yml'}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]
    service = Service(cmd, port, workdir / "alertmanager.log", "alertmanager")
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(service, url, timeout=20)
        yield url
    finally:
        service.stop()


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


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


def _alert(alert_id: str) -> Alert:
    now = time.time()
    return Alert(
        id=alert_id, channel_id="news", detector="audio_artifact", label="hum",
        severity="major", start=10.0, end=16.0, confidence=0.97,
        opened_at=now - 5, updated_at=now, summary="Hum on news",
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
        "alertname": "vqm_audio_artifact",
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
