"""Flap suppression and silences in the engine, paged through the outbox to a local receiver:
a defect that keeps coming back is one alert and one page; a silenced one pages nobody."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client import CollectorRegistry

from alerting.config import AlertingConfig
from alerting.engine import AlertEngine
from alerting.models import AlertState, AlertTransition, Silence
from alerting.notifiers import NotificationConfig, build_notifiers
from alerting.outbox import Outbox, OutboxConfig, OutboxMetrics
from monitor.app.config import ChannelConfig, VqmConfig
from monitor.core.messages import DefectSpan, DetectionMessage
from monitor.core.metrics import Metrics
from monitor.core.state import MemoryStateStore
from tests.receiver import Receiver
from tests.unit.alerting.test_engine import Clock, Recorder

T0 = 1_700_000_000.0
FLAP_WINDOW = 30.0
FAST = OutboxConfig(backoff_base=0.02, backoff_max=0.1, poll_interval=0.02)
OPENED, UPDATED, RESOLVED = (
    AlertTransition.OPENED,
    AlertTransition.UPDATED,
    AlertTransition.RESOLVED,
)


def config(flap_window: float = FLAP_WINDOW) -> VqmConfig:
    return VqmConfig(
        channels=[
            ChannelConfig(id="news", url="http://origin/news.m3u8", severity="critical"),
            ChannelConfig(id="sport", url="http://origin/sport.m3u8", severity="critical"),
        ],
        alerting=AlertingConfig(flap_window=flap_window),
    )


def black(seq: int, defective: bool, channel: str = "news") -> DetectionMessage:
    start = seq * 2.0
    spans = [DefectSpan(start=start, end=start + 2.0, confidence=0.99)] if defective else []
    return DetectionMessage(
        channel_id=channel,
        seq=seq,
        detector="black",
        media_start=start,
        media_end=start + 2.0,
        spans=spans,
        score=0.99 if defective else 0.0,
        fetched_at=T0 + start,
    )


class Paged:
    """An engine whose listeners are a recorder and an outbox paging a local receiver."""

    def __init__(self, receiver: Receiver, client: httpx.AsyncClient, flap_window: float) -> None:
        self.clock = Clock()
        self.state = MemoryStateStore()
        self.recorder = Recorder()
        notifications = NotificationConfig.model_validate(
            {
                "notifiers": {
                    "oncall": {"type": "pagerduty", "url": receiver.url, "routing_key": "k"}
                },
                "routes": [{"severities": ["critical"], "notifiers": ["oncall"]}],
            }
        )
        self.outbox = Outbox(
            self.state,
            build_notifiers(notifications, client),
            OutboxMetrics(CollectorRegistry()),
            FAST,
        )
        self.engine = AlertEngine(
            config(flap_window),
            self.state,
            Metrics(CollectorRegistry()),
            [self.recorder, self.outbox.listener],
            clock=self.clock,
        )
        self.seq = 0

    async def segments(self, defective: bool, count: int, channel: str = "news") -> None:
        """``count`` two-second segments, the wall clock keeping pace, ticking each second."""
        for _ in range(count):
            await self.engine.handle_detection(black(self.seq, defective, channel))
            self.seq += 1
            for _ in range(2):
                self.clock.t += 1.0
                await self.engine.tick()

    async def wait(self, seconds: float) -> None:
        for _ in range(int(seconds)):
            self.clock.t += 1.0
            await self.engine.tick()

    async def delivered(self) -> None:
        deadline = asyncio.get_running_loop().time() + 5
        while await self.outbox.pending():
            assert asyncio.get_running_loop().time() < deadline, "outbox never drained"
            await asyncio.sleep(0.02)


def pages(receiver: Receiver) -> list[tuple[str, str]]:
    return [(r.json()["event_action"], r.json()["dedup_key"]) for r in receiver.accepted]


async def run_outbox(paged: Paged) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    return stop, asyncio.create_task(paged.outbox.run(stop))


async def test_a_flapping_defect_is_one_alert_and_one_page_not_a_storm(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    paged = Paged(receiver, client, FLAP_WINDOW)
    stop, task = await run_outbox(paged)
    for _ in range(5):  # 4 s black, 4 s clean: each clean stretch is a full recovery
        await paged.segments(defective=True, count=2)
        await paged.segments(defective=False, count=2)
    await paged.delivered()
    assert [t for t, _ in paged.recorder.transitions()].count(OPENED) == 1
    assert RESOLVED not in [t for t, _ in paged.recorder.transitions()]
    [alert] = await paged.engine.store.active()
    assert alert.flaps == 4
    assert (alert.start, alert.end) == (0.0, 36.0)

    await paged.wait(FLAP_WINDOW)
    await paged.delivered()
    stop.set()
    await task
    [done] = await paged.engine.store.recent()
    assert (done.id, done.state, done.end) == (alert.id, AlertState.RESOLVED, 36.0)
    assert pages(receiver) == [("trigger", alert.id), ("resolve", alert.id)]


async def test_a_recovered_alert_stays_open_through_the_window_then_resolves(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    paged = Paged(receiver, client, FLAP_WINDOW)
    await paged.segments(defective=True, count=2)
    await paged.segments(defective=False, count=1)
    [held] = await paged.engine.store.active()
    assert held.resolving_since is not None
    await paged.wait(FLAP_WINDOW - 4)
    assert await paged.engine.store.active() != []
    await paged.wait(4)
    assert await paged.engine.store.active() == []
    assert paged.recorder.transitions()[-1] == (RESOLVED, "black")


async def test_a_defect_back_after_the_window_is_a_new_alert(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    paged = Paged(receiver, client, flap_window=5.0)
    await paged.segments(defective=True, count=2)
    await paged.segments(defective=False, count=4)  # 8 s clean: past the 5 s window
    await paged.segments(defective=True, count=2)
    opened = [e.alert.id for e in paged.recorder.events if e.transition is OPENED]
    assert len(opened) == 2 and opened[0] != opened[1]


async def test_without_a_flap_window_every_recovery_resolves_at_once(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    paged = Paged(receiver, client, flap_window=0.0)
    for _ in range(3):
        await paged.segments(defective=True, count=2)
        await paged.segments(defective=False, count=2)
    transitions = [t for t, _ in paged.recorder.transitions() if t is not UPDATED]
    assert transitions == [OPENED, RESOLVED] * 3


async def test_a_held_resolve_survives_a_restart_and_finishes_in_the_new_process(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    paged = Paged(receiver, client, FLAP_WINDOW)
    await paged.segments(defective=True, count=2)
    await paged.segments(defective=False, count=1)
    restarted = AlertEngine(
        config(), paged.state, Metrics(CollectorRegistry()), [paged.recorder], clock=paged.clock
    )
    await restarted.start()
    paged.clock.t += FLAP_WINDOW
    await restarted.tick()
    assert await restarted.store.active() == []


async def silence(paged: Paged, **spec: object) -> Silence:
    made = Silence(id=f"s{len(await paged.engine.store.silences())}", created_at=T0, **spec)
    await paged.engine.store.put_silence(made)
    return made


async def test_a_silenced_alert_is_recorded_and_listed_but_not_paged(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    paged = Paged(receiver, client, flap_window=0.0)
    quiet = await silence(paged, channel_id="news")
    stop, task = await run_outbox(paged)
    await paged.segments(defective=True, count=2)
    [alert] = await paged.engine.store.active()
    assert alert.silenced_by == quiet.id
    await paged.segments(defective=False, count=1)
    await paged.segments(defective=True, count=2, channel="sport")  # not silenced
    await paged.delivered()
    stop.set()
    await task
    [sport] = await paged.engine.store.active(channel_id="sport")
    assert pages(receiver) == [("trigger", sport.id)]
    assert [a.channel_id for a in await paged.engine.store.recent()] == ["news"]
    assert [t for t, _ in paged.recorder.transitions()].count(OPENED) == 2  # both recorded


async def test_an_alert_still_open_when_its_maintenance_window_ends_is_paged_then(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    paged = Paged(receiver, client, flap_window=0.0)
    await silence(paged, detector="black", starts_at=T0 - 10, ends_at=T0 + 6)
    stop, task = await run_outbox(paged)
    await paged.segments(defective=True, count=2)  # opens at T0 + 2: silenced
    await paged.delivered()
    assert receiver.requests == []
    await paged.segments(defective=True, count=2)  # the window ends at T0 + 6
    await paged.segments(defective=False, count=1)
    await paged.delivered()
    stop.set()
    await task
    [done] = await paged.engine.store.recent()
    assert pages(receiver) == [("trigger", done.id), ("resolve", done.id)]


async def test_a_silence_made_for_another_channel_leaves_this_one_paged(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    paged = Paged(receiver, client, flap_window=0.0)
    await silence(paged, channel_id="sport", detector="black")
    await paged.segments(defective=True, count=2)
    [alert] = await paged.engine.store.active()
    assert alert.silenced_by is None and not alert.unpaged
