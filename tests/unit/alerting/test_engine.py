"""The alert engine: one alert per defect, replays page once, restarts lose nothing."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from alerting.config import AlertingConfig
from alerting.engine import AlertEngine
from alerting.models import AlertEvent, AlertState, AlertTransition
from alerting.store import AlertStore, ChannelStatus, channel_status
from monitor.app.config import ChannelConfig, VqmConfig
from monitor.core.messages import DefectSpan, DetectionMessage, StreamEvent, StreamEventKind
from monitor.core.metrics import Metrics
from monitor.core.state import MemoryStateStore
from monitor.inference.detectors.registry import parse_detector_config
from monitor.inference.runs import DefectRuns

OPENED, UPDATED, RESOLVED = (
    AlertTransition.OPENED,
    AlertTransition.UPDATED,
    AlertTransition.RESOLVED,
)
T0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


def make_config() -> VqmConfig:
    return VqmConfig(
        channels=[
            ChannelConfig(
                id="news",
                name="News 24",
                url="http://origin/news.m3u8",
                severity="critical",
                detectors=[parse_detector_config({"type": "black", "severity": "minor"})],
            ),
            ChannelConfig(id="sport", url="http://origin/sport.m3u8"),
        ],
        alerting=AlertingConfig(flap_window=0),  # resolve at recovery; flap holds tested apart
    )


class Recorder:
    def __init__(self) -> None:
        self.events: list[AlertEvent] = []

    async def __call__(self, event: AlertEvent) -> None:
        self.events.append(event)

    def transitions(self) -> list[tuple[AlertTransition, str]]:
        return [(e.transition, e.alert.detector) for e in self.events]


def make_engine(
    state: MemoryStateStore | None = None, clock: Clock | None = None
) -> tuple[AlertEngine, Recorder, Metrics]:
    recorder = Recorder()
    metrics = Metrics(CollectorRegistry())
    engine = AlertEngine(
        make_config(), state or MemoryStateStore(), metrics, [recorder], clock=clock or Clock()
    )
    return engine, recorder, metrics


def detection(
    seq: int,
    frozen: bool,
    detector: str = "freeze",
    channel: str = "news",
    error: str | None = None,
) -> DetectionMessage:
    start = seq * 2.0
    spans = [DefectSpan(start=start, end=start + 2.0, confidence=0.95)] if frozen else []
    return DetectionMessage(
        channel_id=channel,
        seq=seq,
        detector=detector,
        media_start=start,
        media_end=start + 2.0,
        spans=spans,
        score=0.95 if frozen else 0.0,
        fetched_at=T0 + start,
        error=error,
    )


def gauge(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def active_gauge(metrics: Metrics, channel: str, detector: str, severity: str) -> float | None:
    labels = {"channel": channel, "detector": detector, "severity": severity}
    return gauge(metrics, "vqm_active_alerts", **labels)


async def test_a_defect_over_several_segments_opens_one_alert_and_resolves_it() -> None:
    engine, recorder, metrics = make_engine()
    for seq in range(4):
        await engine.handle_detection(detection(seq, frozen=True))
    await engine.handle_detection(detection(4, frozen=False))
    assert recorder.transitions() == [
        (OPENED, "freeze"),
        (UPDATED, "freeze"),
        (UPDATED, "freeze"),
        (UPDATED, "freeze"),
        (RESOLVED, "freeze"),
    ]
    resolved = recorder.events[-1].alert
    assert (resolved.start, resolved.end, resolved.state) == (0.0, 8.0, AlertState.RESOLVED)
    assert resolved.id == recorder.events[0].alert.id
    assert resolved.severity == "critical"
    assert gauge(metrics, "vqm_alerts_opened_total", channel="news", detector="freeze") == 1
    assert active_gauge(metrics, "news", "freeze", "critical") == 0
    assert [a.id for a in await engine.store.recent()] == [resolved.id]
    assert await engine.store.active() == []


async def test_the_open_alert_is_active_in_the_store_and_the_gauge() -> None:
    engine, _, metrics = make_engine()
    await engine.handle_detection(detection(0, frozen=True))
    [alert] = await engine.store.active(channel_id="news")
    assert (alert.detector, alert.start, alert.end, alert.confidence) == ("freeze", 0.0, 2.0, 0.95)
    assert alert.summary == "freeze on News 24"
    assert active_gauge(metrics, "news", "freeze", "critical") == 1


async def test_a_replayed_detection_neither_reopens_nor_notifies() -> None:
    engine, recorder, metrics = make_engine()
    await engine.handle_detection(detection(0, frozen=True))
    await engine.handle_detection(detection(1, frozen=False))
    before = list(recorder.events)
    await engine.handle_detection(detection(0, frozen=True))
    await engine.handle_detection(detection(1, frozen=False))
    assert recorder.events == before
    assert gauge(metrics, "vqm_alerts_opened_total", channel="news", detector="freeze") == 1


async def test_a_failed_detection_can_be_retried() -> None:
    engine, recorder, _ = make_engine()

    async def broken(event: AlertEvent) -> None:
        raise RuntimeError("listener down")

    state = engine.store.state
    original_set = state.set
    calls = {"n": 0}

    async def flaky_set(ns: str, key: str, value: str, ttl: float | None = None) -> None:
        if ns == "trackers" and calls["n"] == 0:
            calls["n"] += 1
            raise ConnectionError("store went away")
        await original_set(ns, key, value, ttl)

    state.set = flaky_set  # type: ignore[method-assign]
    engine.add_listener(broken)
    with pytest.raises(ConnectionError):
        await engine.handle_detection(detection(0, frozen=True))
    await engine.handle_detection(detection(0, frozen=True))
    assert recorder.transitions() == [(OPENED, "freeze")]
    assert engine.listener_errors == 1


async def test_severity_comes_from_the_detector_override_before_the_channel() -> None:
    engine, recorder, _ = make_engine()
    await engine.handle_detection(detection(0, frozen=True, detector="black"))
    assert recorder.events[0].alert.severity == "minor"


async def test_the_active_alert_gauge_carries_the_severity_each_alert_is_paged_with() -> None:
    """The Prometheus rules copy this label, so both paging paths page with one severity."""
    engine, recorder, metrics = make_engine()
    await engine.handle_detection(detection(0, frozen=True, detector="black"))  # override
    await engine.handle_detection(detection(0, frozen=True))  # news' own severity
    await engine.handle_detection(detection(0, frozen=True, channel="sport"))  # the default
    paged = {(e.alert.channel_id, e.alert.detector, e.alert.severity) for e in recorder.events}
    assert paged == {("news", "black", "minor"), ("news", "freeze", "critical"),
                     ("sport", "freeze", "major")}  # fmt: skip
    for channel, detector, severity in paged:
        assert active_gauge(metrics, channel, detector, severity) == 1
    await engine.handle_detection(detection(1, frozen=False, detector="black"))
    assert active_gauge(metrics, "news", "black", "minor") == 0


async def test_a_restart_exports_each_open_alert_under_the_severity_it_was_opened_with() -> None:
    """A channel whose severity changed since keeps its open alert's series, not a new one."""
    state = MemoryStateStore()
    first, _, _ = make_engine(state)
    await first.handle_detection(detection(0, frozen=True, channel="sport"))
    config = make_config()
    config.channels[1].severity = "warning"
    metrics = Metrics(CollectorRegistry())
    second = AlertEngine(config, state, metrics, clock=Clock())
    await second.start()
    assert active_gauge(metrics, "sport", "freeze", "major") == 1
    assert active_gauge(metrics, "sport", "freeze", "warning") is None


async def test_unknown_channels_and_detectors_are_skipped() -> None:
    engine, recorder, _ = make_engine()
    await engine.handle_detection(detection(0, frozen=True, channel="nope"))
    await engine.handle_detection(detection(0, frozen=True, detector="nope"))
    assert recorder.events == []


async def test_a_decode_error_counts_as_neither_clean_nor_defect() -> None:
    engine, recorder, _ = make_engine()
    await engine.handle_detection(detection(0, frozen=True))
    await engine.handle_detection(detection(1, frozen=False, error="corrupt"))
    await engine.handle_detection(detection(2, frozen=True))
    assert recorder.transitions() == [(OPENED, "freeze"), (UPDATED, "freeze")]
    assert recorder.events[-1].alert.end == 6.0


async def test_a_restarted_engine_keeps_the_open_alert_and_does_not_notify_again() -> None:
    state = MemoryStateStore()
    first, first_events, _ = make_engine(state)
    await first.handle_detection(detection(0, frozen=True))
    await first.handle_detection(detection(1, frozen=True))
    alert_id = first_events.events[0].alert.id

    second, events, metrics = make_engine(state)
    await second.start()
    assert active_gauge(metrics, "news", "freeze", "critical") == 1
    await second.handle_detection(detection(1, frozen=True))  # redelivered after the restart
    await second.handle_detection(detection(2, frozen=True))
    await second.handle_detection(detection(3, frozen=False))
    assert [e.transition for e in events.events] == [UPDATED, RESOLVED]
    assert {e.alert.id for e in events.events} == {alert_id}
    assert (events.events[-1].alert.start, events.events[-1].alert.end) == (0.0, 6.0)
    assert gauge(metrics, "vqm_alerts_opened_total", channel="news", detector="freeze") is None


async def test_an_emptied_store_mid_defect_keeps_the_alert_id_and_resolves_it() -> None:
    """A Redis restarted empty: the re-found defect carries its start (inference stamps it),
    so the alert comes back under the same id, and its resolve is sent."""
    runs = DefectRuns()

    def carried(seq: int, frozen: bool) -> DetectionMessage:
        msg = detection(seq, frozen)
        spans = runs.carry(msg.channel_id, msg.detector, msg.media_start, msg.media_end, msg.spans)
        return msg.model_copy(update={"spans": spans})

    first, before, _ = make_engine(MemoryStateStore())
    for seq in range(3):
        await first.handle_detection(carried(seq, frozen=True))
    opened = before.events[0]
    assert opened.transition is OPENED

    second, after, _ = make_engine(MemoryStateStore())  # the same defect, nothing remembered
    await second.start()
    await second.handle_detection(carried(3, frozen=True))
    await second.handle_detection(carried(4, frozen=False))
    assert [(e.transition, e.alert.id) for e in after.events] == [
        (OPENED, opened.alert.id),
        (RESOLVED, opened.alert.id),
    ]
    assert (after.events[-1].alert.start, after.events[-1].alert.end) == (0.0, 8.0)


async def test_a_stream_outage_opens_one_stream_alert_and_recovered_resolves_it() -> None:
    engine, recorder, metrics = make_engine()
    for at in (T0, T0 + 2):
        await engine.handle_stream_event(
            StreamEvent(channel_id="sport", kind=StreamEventKind.HTTP_ERROR, status=503, at=at)
        )
    [alert] = await engine.store.active("sport")
    assert (alert.detector, alert.label, alert.severity) == ("stream", "http_error", "major")
    await engine.handle_stream_event(
        StreamEvent(channel_id="sport", kind=StreamEventKind.RECOVERED, at=T0 + 4)
    )
    assert [(e.transition, e.alert.label) for e in recorder.events] == [
        (OPENED, "http_error"),
        (UPDATED, "http_error"),
        (RESOLVED, "http_error"),
    ]
    assert active_gauge(metrics, "sport", "stream", "major") == 0


async def test_the_next_good_segment_resolves_a_stream_alert() -> None:
    engine, recorder, _ = make_engine()
    await engine.handle_stream_event(
        StreamEvent(channel_id="news", kind=StreamEventKind.STALE_PLAYLIST, at=T0 - 1)
    )
    await engine.handle_detection(detection(0, frozen=False))  # fetched at T0
    assert [e.transition for e in recorder.events] == [OPENED, RESOLVED]
    assert await engine.store.active("news") == []


async def test_informational_stream_events_open_no_alert() -> None:
    engine, recorder, _ = make_engine()
    await engine.handle_stream_event(
        StreamEvent(channel_id="news", kind=StreamEventKind.DISCONTINUITY, at=T0)
    )
    assert recorder.events == []
    health = await engine.store.get_channel("news")
    assert health is not None and health.last_event == "discontinuity"


async def test_a_stream_event_older_than_the_newest_segment_is_ignored() -> None:
    engine, recorder, _ = make_engine()
    await engine.handle_segment_seen("news", T0 + 10, 2.0)
    await engine.handle_stream_event(
        StreamEvent(channel_id="news", kind=StreamEventKind.TIMEOUT, at=T0 + 5)
    )
    assert recorder.events == []


async def test_a_channel_without_segments_for_three_durations_is_down() -> None:
    clock = Clock()
    engine, _, metrics = make_engine(clock=clock)
    await engine.start()
    await engine.handle_segment_seen("news", T0, 2.0)
    assert gauge(metrics, "vqm_channel_up", channel="news") == 1
    clock.t = T0 + 5.0
    await engine.tick()
    assert gauge(metrics, "vqm_channel_up", channel="news") == 1
    clock.t = T0 + 7.0
    await engine.tick()
    assert gauge(metrics, "vqm_channel_up", channel="news") == 0
    health = await engine.store.get_channel("news")
    assert channel_status(health, active_alerts=0) is ChannelStatus.DOWN


async def test_a_channel_never_seen_is_unknown_then_down() -> None:
    clock = Clock()
    engine, _, metrics = make_engine(clock=clock)
    await engine.start()
    await engine.tick()
    assert channel_status(await engine.store.get_channel("sport"), 0) is ChannelStatus.UNKNOWN
    clock.t = T0 + 19.0  # 3 x the default 6 s segment
    await engine.tick()
    assert gauge(metrics, "vqm_channel_up", channel="sport") == 0
    assert channel_status(await engine.store.get_channel("sport"), 0) is ChannelStatus.DOWN


async def test_a_channel_with_an_open_alert_is_alerting_and_otherwise_ok() -> None:
    clock = Clock()
    engine, _, _ = make_engine(clock=clock)
    await engine.handle_detection(detection(0, frozen=True))
    health = await engine.store.get_channel("news")
    assert channel_status(health, len(await engine.store.active("news"))) is ChannelStatus.ALERTING
    assert channel_status(health, 0) is ChannelStatus.OK


async def test_history_keeps_only_the_most_recent_resolved_alerts() -> None:
    engine, _, _ = make_engine()
    engine.store = AlertStore(engine.store.state, history_limit=2)
    for seq in range(0, 12, 3):
        await engine.handle_detection(detection(seq, frozen=True))
        await engine.handle_detection(detection(seq + 1, frozen=False))
    recent = await engine.store.recent()
    assert [a.start for a in recent] == [18.0, 12.0]


async def test_a_restarted_engine_reports_channel_up_from_the_store() -> None:
    state, clock = MemoryStateStore(), Clock()
    first, _, _ = make_engine(state, clock)
    await first.handle_segment_seen("news", T0, 2.0)
    second, _, metrics = make_engine(state, clock)
    await second.start()
    await second.tick()
    assert gauge(metrics, "vqm_channel_up", channel="news") == 1


async def test_a_sequence_restart_is_not_mistaken_for_a_replay() -> None:
    engine, recorder, _ = make_engine()
    for seq in range(2):
        await engine.handle_detection(detection(seq, frozen=True))
    restarted = detection(0, frozen=False).model_copy(update={"media_start": 4.0, "media_end": 6.0})
    await engine.handle_detection(restarted)
    assert recorder.transitions()[-1] == (RESOLVED, "freeze")


async def test_input_loss_of_a_ts_feed_is_a_stream_alert_the_next_segment_resolves() -> None:
    engine, recorder, _ = make_engine()
    await engine.handle_stream_event(
        StreamEvent(channel_id="news", kind=StreamEventKind.INPUT_LOSS, at=T0 - 1)
    )
    await engine.handle_detection(detection(0, frozen=False))  # fetched at T0
    assert [(e.transition, e.alert.label) for e in recorder.events] == [
        (OPENED, "input_loss"),
        (RESOLVED, "input_loss"),
    ]


async def test_a_transport_condition_lasts_across_segments_until_recovered() -> None:
    """A PID gone (audio lost) leaves segments flowing: they must not resolve its alert."""
    engine, recorder, _ = make_engine()
    await engine.handle_segment_seen("news", T0 + 10, 2.0)
    await engine.handle_stream_event(
        StreamEvent(channel_id="news", kind=StreamEventKind.PID_ERROR, at=T0 + 5)
    )
    await engine.handle_segment_seen("news", T0 + 12, 2.0)
    assert [e.transition for e in recorder.events] == [OPENED]
    await engine.handle_stream_event(
        StreamEvent(channel_id="news", kind=StreamEventKind.RECOVERED, at=T0 + 14)
    )
    assert [(e.transition, e.alert.label) for e in recorder.events] == [
        (OPENED, "pid_error"),
        (RESOLVED, "pid_error"),
    ]


async def test_counted_transport_errors_are_recorded_on_the_channel_without_an_alert() -> None:
    engine, recorder, _ = make_engine()
    await engine.handle_stream_event(
        StreamEvent(channel_id="news", kind=StreamEventKind.CONTINUITY_ERROR, at=T0)
    )
    assert recorder.events == []
    health = await engine.store.get_channel("news")
    assert health is not None and health.last_event == "continuity_error"
