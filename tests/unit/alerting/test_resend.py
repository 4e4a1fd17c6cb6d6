"""The resender re-asserts open alerts (and recent resolves) to Alertmanager every interval."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from alerting.models import AlertState
from alerting.notifiers import NotificationConfig, build_notifiers
from alerting.notifiers.base import rfc3339
from alerting.outbox import OutboxMetrics
from alerting.resend import Resender
from alerting.store import AlertStore
from monitor.core.metrics import Metrics
from monitor.core.state import MemoryStateStore
from tests.conftest import free_port
from tests.integration.conftest import wait_for
from tests.receiver import Receiver
from tests.unit.alerting.test_notifiers import make_alert

INTERVAL = 0.05


def resender(
    store: AlertStore, client: httpx.AsyncClient, metrics: Metrics, am_url: str, hook_url: str
) -> Resender:
    config = NotificationConfig.model_validate(
        {
            "notifiers": {
                "am": {"type": "alertmanager", "url": am_url, "resend_interval": INTERVAL,
                       "resolved_retention": 60},
                "hook": {"type": "webhook", "url": hook_url, "secret": "s" * 16},
            },
            "routes": [{"severities": ["critical", "major"], "notifiers": ["am", "hook"]}],
        }
    )  # fmt: skip
    return Resender(store, build_notifiers(config, client), OutboxMetrics(metrics=metrics))


@pytest.fixture
async def running(
    receiver: Receiver, client: httpx.AsyncClient, metrics: Metrics
) -> AsyncIterator[tuple[AlertStore, Receiver]]:
    """A resender re-sending to ``receiver`` as Alertmanager (and as a webhook, which is not
    re-sent), over an empty store the test fills."""
    store = AlertStore(MemoryStateStore())
    stop = asyncio.Event()
    task = asyncio.create_task(
        resender(store, client, metrics, receiver.url, f"{receiver.url}/hook").run(stop)
    )
    yield store, receiver
    stop.set()
    await asyncio.wait_for(task, 5)


def sent(receiver: Receiver) -> list[dict[str, Any]]:
    """Every alert in every accepted re-send, in order."""
    return [a for r in receiver.accepted for a in r.json()]


async def test_open_alerts_are_re_sent_every_interval_as_firing(
    running: tuple[AlertStore, Receiver],
) -> None:
    store, receiver = running
    await store.put_active(make_alert("a1", opened_at=time.time()))
    assert await wait_for(lambda: len(receiver.accepted) >= 3, timeout=5)
    assert {r.path for r in receiver.accepted} == {"/api/v2/alerts"}  # not the webhook
    assert {a["labels"]["alert_id"] for a in sent(receiver)} == {"a1"}


async def test_a_recent_resolve_is_re_sent_with_its_end_and_an_unpaged_alert_never(
    running: tuple[AlertStore, Receiver],
) -> None:
    store, receiver = running
    now = time.time()
    done = make_alert("done", state=AlertState.RESOLVED, resolved_at=now - 1)
    old = make_alert("old", state=AlertState.RESOLVED, resolved_at=now - 3600)
    for alert in (done, old):
        await store.resolve(alert)
    await store.put_active(make_alert("hushed", detector="freeze", unpaged=True))
    assert await wait_for(lambda: len(receiver.accepted) >= 2, timeout=5)
    by_id = {a["labels"]["alert_id"]: a for a in sent(receiver)}
    assert set(by_id) == {"done"}
    assert by_id["done"]["endsAt"] == rfc3339(now - 1)


async def test_a_failed_re_send_is_counted_and_tried_again_next_interval(
    client: httpx.AsyncClient, metrics: Metrics
) -> None:
    store = AlertStore(MemoryStateStore())
    await store.put_active(make_alert("a1"))
    down = f"http://127.0.0.1:{free_port()}"
    stop = asyncio.Event()
    task = asyncio.create_task(resender(store, client, metrics, down, down).run(stop))

    def failures() -> float:
        labels = {"notifier": "am", "retriable": "true"}
        return metrics.registry.get_sample_value("vqm_notification_failures_total", labels) or 0

    try:
        assert await wait_for(lambda: failures() >= 2, timeout=5)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_without_a_notifier_that_resends_the_resender_returns_at_once(
    client: httpx.AsyncClient, metrics: Metrics
) -> None:
    config = NotificationConfig.model_validate(
        {"notifiers": {"hook": {"type": "webhook", "url": "http://x", "secret": "s" * 16}}}
    )
    router = build_notifiers(config, client)
    store = AlertStore(MemoryStateStore())
    await asyncio.wait_for(Resender(store, router).run(asyncio.Event()), 1)
