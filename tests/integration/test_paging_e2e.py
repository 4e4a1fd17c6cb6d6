"""The one-process runtime pages a real webhook receiver: detections on the bus become one
signed page per transition, also when the receiver was down while the alert opened; a Slack
page's picture link is served by the running API to anyone holding the link."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable

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
from monitor.core.state import StateStore
from tests.conftest import free_port
from tests.integration.conftest import wait_for
from tests.receiver import Receiver

SECRET = "paging-e2e-shared-secret"
RETRY = OutboxConfig(backoff_base=0.2, backoff_max=1.0, poll_interval=0.1)


TOKEN = "paging-e2e-api-token-0123456789"
PICTURE = b"\xff\xd8\xff\xe0 the channel when it went black"


def config(receiver: Receiver, notifier: dict[str, str] | None = None) -> VqmConfig:
    notifier = notifier or {"type": "webhook", "url": f"{receiver.url}/page", "secret": SECRET}
    return VqmConfig(
        channels=[ChannelConfig(id="news", url="http://origin/news.m3u8", severity="critical")],
        notifications=NotificationConfig.model_validate(
            {
                "notifiers": {"hook": notifier},
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

    def __init__(
        self,
        receiver: Receiver,
        state: StateStore | None = None,
        vqm: VqmConfig | None = None,
        port: int | None = None,
        **settings: object,
    ) -> None:
        self.bus = MemoryBus()
        self.port = port or free_port()
        self.runtime = Runtime(
            vqm or config(receiver),
            Settings.model_validate(
                {"api_port": self.port, "kafka_bootstrap": None, "redis_url": None, **settings}
            ),
            bus=self.bus,
            state=state,
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
        await self.publish(black(seq, defective))

    async def publish(self, msg: DetectionMessage) -> None:
        topic = self.runtime.config.topics.detections
        await self.bus.publish(topic, msg.channel_id, encode_message(msg))

    async def nothing_pending(self) -> bool:
        """Every page enqueued so far was delivered (or dropped): nothing more will come."""
        outbox = self.runtime.outbox
        return outbox is not None and not await outbox.pending()

    async def failed_attempts(self) -> int:
        outbox = self.runtime.outbox
        return sum(e.attempts for e in await outbox.pending()) if outbox is not None else 0


async def until(condition: Callable[[], object], timeout: float) -> None:
    """Poll ``condition`` (sync or async) until it holds; fail after ``timeout`` seconds."""
    assert await wait_for(condition, timeout, interval=0.05), "not in time"


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
        await until(running.nothing_pending, 10)  # nothing more comes
    assert transitions(receiver) == ["opened", "resolved"]
    [alert] = alerts["alerts"]
    for request in receiver.accepted:
        assert request.path == "/page"
        assert verify_signature(request.body, SECRET, request.headers["x-vqm-signature"])
        assert request.json()["alert"]["id"] == alert["id"]


async def test_a_slack_page_shows_the_picture_the_running_api_serves_to_its_link_alone(
    receiver: Receiver,
) -> None:
    slack = {"type": "slack", "url": f"{receiver.url}/services/T/B/X"}
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    running = Running(
        receiver,
        vqm=config(receiver, slack),
        port=port,
        environment="production",
        api_token=TOKEN,
        api_read_token_required=True,  # the API's reads are closed; the link still opens
        public_url=api,
    )
    async with running:
        for seq in range(3):
            msg = black(seq, defective=True)
            if seq == 0:
                msg = msg.model_copy(update={"thumbnail_jpeg": base64.b64encode(PICTURE).decode()})
            await running.publish(msg)
        await until(lambda: len(receiver.accepted) == 1, 10)
        blocks = receiver.accepted[0].json()["blocks"]
        [image] = [b for b in blocks if b["type"] == "image"]
        [actions] = [b for b in blocks if b["type"] == "actions"]
        async with httpx.AsyncClient() as client:
            picture = await client.get(image["image_url"])  # no token: Slack has none
            tampered = await client.get(image["image_url"].replace("signature=", "signature=A"))
            closed = await client.get(f"{api}/api/channels/news/thumbnail.jpg")
    assert (picture.status_code, picture.content) == (200, PICTURE)
    assert tampered.status_code == 403
    assert closed.status_code == 401
    assert actions["elements"][0]["url"] == f"{api}/#channel=news"


async def page_after_outage(failures: int, timeout: float) -> None:
    """The receiver is down until the outbox has failed ``failures`` times to reach it."""
    receiver = Receiver()  # down while the alert opens
    try:
        async with Running(receiver) as running:
            for seq in range(3):
                await running.detect(seq, defective=True)
            await until(lambda: _at_least(running.failed_attempts(), failures), timeout)
            assert receiver.requests == []
            await receiver.start()
            await until(lambda: len(receiver.accepted) == 1, 5)
            await until(running.nothing_pending, 5)  # delivered and marked: no second copy
    finally:
        await receiver.stop()
    assert transitions(receiver) == ["opened"]


async def _at_least(count: Awaitable[int], least: int) -> bool:
    return await count >= least


async def test_a_receiver_down_for_a_few_retries_gets_the_page_once_when_back() -> None:
    await page_after_outage(failures=3, timeout=10)


@pytest.mark.slow
async def test_a_receiver_down_for_30_retries_gets_the_page_once_when_back() -> None:
    await page_after_outage(failures=30, timeout=60)
