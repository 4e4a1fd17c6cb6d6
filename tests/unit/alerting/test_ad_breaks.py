"""Ad breaks: on a channel with ``ad_breaks: suppress``, black and silence that begin inside a
break the stream signals are recorded but not paged, unless they outlast the break."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from alerting.config import AlertingConfig
from alerting.engine import AlertEngine
from alerting.models import AlertEvent, AlertTransition
from monitor.app.config import ChannelConfig, VqmConfig
from monitor.core.messages import DefectSpan, DetectionMessage, StreamEvent, StreamEventKind
from monitor.core.metrics import Metrics
from monitor.core.state import MemoryStateStore
from monitor.inference.detectors.registry import parse_detector_config

T0 = 1_700_000_000.0
SEGMENT = 2.0
PTS0 = 10.0  # the stream's PTS timeline starts here, not at 0: breaks are placed on it


def make_engine(ad_breaks: str) -> tuple[AlertEngine, list[AlertEvent]]:
    config = VqmConfig(
        channels=[
            ChannelConfig(
                id="news",
                url="http://origin/news.m3u8",
                ad_breaks=ad_breaks,
                detectors=[parse_detector_config({"type": "black", "min_duration": 1.0})],
            )
        ],
        alerting=AlertingConfig(flap_window=0),
    )
    events: list[AlertEvent] = []

    async def record(event: AlertEvent) -> None:
        events.append(event)

    engine = AlertEngine(config, MemoryStateStore(), Metrics(CollectorRegistry()), [record])
    return engine, events


def detection(seq: int, defect: bool, detector: str = "black") -> DetectionMessage:
    start = PTS0 + seq * SEGMENT
    spans = [DefectSpan(start=start, end=start + SEGMENT, confidence=1.0)] if defect else []
    return DetectionMessage(
        channel_id="news",
        seq=seq,
        detector=detector,
        media_start=start,
        media_end=start + SEGMENT,
        spans=spans,
        fetched_at=T0 + seq * SEGMENT,
    )


def ad_break(kind: StreamEventKind, seq: int) -> StreamEvent:
    return StreamEvent(channel_id="news", kind=kind, seq=seq, media_time=seq * SEGMENT)


async def feed(engine: AlertEngine, black: set[int], breaks: dict[int, StreamEventKind]) -> None:
    """Segments 0..9 in order, each seq's ad break event (if any) before its detections."""
    for seq in range(10):
        if seq in breaks:
            await engine.handle_stream_event(ad_break(breaks[seq], seq))
        await engine.handle_detection(detection(seq, seq in black, "silence"))
        await engine.handle_detection(detection(seq, seq in black))
        await engine.tick(T0 + seq * SEGMENT)


START, END = StreamEventKind.AD_BREAK_START, StreamEventKind.AD_BREAK_END


def paged(events: list[AlertEvent]) -> list[tuple[str, str]]:
    """Openings and resolves that reach pagers (updates are not paged)."""
    return [
        (e.transition.value, e.alert.detector)
        for e in events
        if e.pages and e.transition is not AlertTransition.UPDATED
    ]


async def test_black_and_silence_inside_a_break_are_recorded_but_not_paged() -> None:
    engine, events = make_engine("suppress")
    await feed(engine, black={3, 4, 5}, breaks={3: START, 6: END})

    assert paged(events) == []
    opened = [e.alert for e in events if e.transition is AlertTransition.OPENED]
    assert {a.detector for a in opened} == {"black", "silence"}
    assert all(a.silenced_by == "ad-break" for a in opened)
    resolved = [e for e in events if e.transition is AlertTransition.RESOLVED]
    assert len(resolved) == 2 and not any(e.pages for e in resolved)


async def test_black_that_outlasts_the_break_pages_once_it_goes_on_past_its_end() -> None:
    engine, events = make_engine("suppress")
    await feed(engine, black={3, 4, 5, 6, 7}, breaks={3: START, 6: END})

    assert paged(events) == [
        ("opened", "silence"),
        ("opened", "black"),
        ("resolved", "silence"),
        ("resolved", "black"),
    ]
    black = [e for e in events if e.alert.detector == "black" and e.pages]
    assert black[0].alert.start == PTS0 + 3 * SEGMENT  # the alert is the whole defect


async def test_black_before_the_break_and_any_black_on_a_paging_channel_page() -> None:
    engine, events = make_engine("suppress")
    await feed(engine, black={1, 2, 3, 4}, breaks={3: START, 5: END})
    assert ("opened", "black") in paged(events)

    engine, events = make_engine("page")
    await feed(engine, black={3, 4}, breaks={3: START, 5: END})
    assert ("opened", "black") in paged(events)


async def test_freeze_is_not_the_breaks_to_hide() -> None:
    engine, events = make_engine("suppress")
    await engine.handle_stream_event(ad_break(START, 0))
    for seq in range(3):
        await engine.handle_detection(detection(seq, True, "freeze"))
    assert ("opened", "freeze") in paged(events)
