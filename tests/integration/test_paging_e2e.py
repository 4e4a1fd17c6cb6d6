"""The one-process runtime pages a real webhook receiver: detections on the bus become one
signed page per transition, also when the receiver was down while the alert opened."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from alerting.config import AlertingConfig
from alerting.notifiers import NotificationConfig, verify_signature
from alerting.outbox import OutboxConfig
from monitor.app.config import ChannelConfig, VqmConfig
from monitor.app.runtime import Runtime
from monitor.core.bus import MemoryBus
from monitor.core.messages import DefectSpan, DetectionMessage, encode_message
from monitor.core.settings import Settings
from tests.conftest import free_port
from tests.receiver import Receiver

SECRET = "paging-e2e-shared-secret"
RETRY = OutboxConfig(backoff_base=0.2, backoff_max=1.0, poll_interval=0.1)


def config(receiver: Receiver) -> VqmConfig:
    return VqmConfig(
        channels=[ChannelConfig(id="news", url="http://origin/news.m3u8", severity="critical")],
        notifications=NotificationConfig.model_validate(
            {
                "notifiers": {
                    "hook": {"type": "webhook", "url": f"{receiver.url}/page", "secret": SECRET}
                },
                "routes": [{"severities": ["critical"], "notifiers": ["hook"]}],
            }
        ),
        alerting=AlertingConfig(outbox=RETRY, flap_window=0),  # pages the resolve at recovery
    )


def black(seq: int, defective: bool) -> DetectionMessage:
    start = seq * 2.0
    spans = [DefectSpan(start=start, end=start + 2.0, confidence=0.99)] if defective else []
    return DetectionMessage(
        channel_id="news",
        seq=seq,
        detector="black",
        media_start=start,
        media_end=start + 2.0,
        spans=spans,
        fetched_at=time.time(),
    )


class Running:
    """A Runtime running the alert and API stages on a memory bus."""

    def __init__(self, receiver: Receiver) -> None:
        self.bus = MemoryBus()
        self.port = free_port()
        self.runtime = Runtime(
            config(receiver),
            Settings(api_port=self.port, kafka_bootstrap=None, redis_url=None),
            bus=self.bus,
        )
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Running:
        self.task = asyncio.create_task(self.runtime.run(self.stop, stages={"alert", "api"}))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 15)

    async def detect(self, seq: int, defective: bool) -> None:
        topic = self.runtime.config.topics.detections
        await self.bus.publish(topic, "news", encode_message(black(seq, defective)))


async def until(condition: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not in time"
        await asyncio.sleep(0.05)


def transitions(receiver: Receiver) -> list[str]:
    return [r.json()["transition"] for r in receiver.accepted]


async def test_detections_on_the_bus_page_the_webhook_once_per_transition_signed(
    receiver: Receiver,
) -> None:
    async with Running(receiver) as running:
        for seq in range(3):
            await running.detect(seq, defective=True)
        await until(lambda: len(receiver.accepted) == 1, 10)
        async with httpx.AsyncClient() as client:
            alerts = (await client.get(f"http://127.0.0.1:{running.port}/api/alerts")).json()
        await running.detect(3, defective=False)
        await until(lambda: len(receiver.accepted) == 2, 10)
        await asyncio.sleep(0.5)  # nothing more comes
    assert transitions(receiver) == ["opened", "resolved"]
    [alert] = alerts["alerts"]
    for request in receiver.accepted:
        assert request.path == "/page"
        assert verify_signature(request.body, SECRET, request.headers["x-vqm-signature"])
        assert request.json()["alert"]["id"] == alert["id"]


async def page_after_outage(outage: float) -> None:
    receiver = Receiver()  # down while the alert opens
    try:
        async with Running(receiver) as running:
            for seq in range(3):
                await running.detect(seq, defective=True)
            await asyncio.sleep(outage)
            assert receiver.requests == []
            await receiver.start()
            await until(lambda: len(receiver.accepted) == 1, 5)
            await asyncio.sleep(1.5)  # past the longest back-off: no second copy
    finally:
        await receiver.stop()
    assert transitions(receiver) == ["opened"]


async def test_a_receiver_down_for_a_few_seconds_gets_the_page_once_when_back() -> None:
    await page_after_outage(3.0)


@pytest.mark.slow
async def test_a_receiver_down_for_30_seconds_gets_the_page_once_when_back() -> None:
    await page_after_outage(30.0)
