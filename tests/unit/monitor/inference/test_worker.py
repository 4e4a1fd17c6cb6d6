"""The inference worker: detections per detector, and bad segments reported, not fatal."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from monitor.app.config import ChannelConfig, VqmConfig
from monitor.app.synthetic.channel import SyntheticChannel
from monitor.app.synthetic.defects import Defect
from monitor.core.bus import BusError, MemoryBus
from monitor.core.messages import (
    DetectionMessage,
    SegmentMessage,
    StreamEvent,
    StreamEventKind,
    decode_message,
    encode_message,
)
from monitor.core.metrics import Metrics
from monitor.core.samples import SampleStore
from monitor.inference.detectors.block_corruption import (
    BlockCorruptionConfig,
    BlockCorruptionDetector,
)
from monitor.inference.detectors.freeze import FreezeConfig, FreezeDetector
from monitor.inference.models import ModelCache
from monitor.inference.segment import DecodedSegment
from monitor.inference.worker import InferenceWorker, thumbnail_jpeg, union_needs


@pytest.fixture(scope="module")
def channel() -> SyntheticChannel:
    return SyntheticChannel(seed=5150, schedule=[Defect(kind="black", start=2.0, duration=2.0)])


async def _run_until(bus: MemoryBus, worker: InferenceWorker, topic: str, count: int) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    for _ in range(200):
        if bus.published(topic) >= count:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 5)


async def publish(bus: MemoryBus, channel: SyntheticChannel, seqs: range | tuple[int, ...]) -> None:
    """Segments ``seqs`` of ``channel`` on the segments topic, as ingest publishes them."""
    for seq in seqs:
        segment = SegmentMessage(
            channel_id="c", seq=seq, duration=2.0, payload=channel.segment_bytes(seq)
        )
        await bus.publish(VqmConfig().topics.segments, "c", encode_message(segment))


async def test_each_segment_gets_one_detection_per_enabled_detector(
    channel: SyntheticChannel, metrics: Metrics, models: ModelCache
) -> None:
    config = VqmConfig(channels=[ChannelConfig(id="c", url="http://unused/c.m3u8")])
    bus = MemoryBus()
    await publish(bus, channel, (0, 1))
    worker = InferenceWorker(config, bus, metrics, models)
    detectors = {d.key for d in worker.analyzer.detectors("c")}
    await _run_until(bus, worker, config.topics.detections, 2 * len(detectors))
    consumer = bus.consumer([config.topics.detections], "check")
    found = [
        decode_message(r.value, DetectionMessage) for r in await consumer.getmany(timeout_ms=10)
    ]
    assert sorted((d.seq, d.detector) for d in found) == sorted(
        (s, k) for s in (0, 1) for k in detectors
    )
    black = {d.seq: d for d in found if d.detector == "black"}
    assert black[0].spans == []
    assert black[1].spans and black[1].spans[0].start == pytest.approx(2.0, abs=0.05)
    assert black[1].media_start == pytest.approx(2.0, abs=0.05)


async def test_a_garbage_segment_gives_a_decode_error_event_and_the_next_segment_is_analysed(
    channel: SyntheticChannel, metrics: Metrics, models: ModelCache
) -> None:
    config = VqmConfig(channels=[ChannelConfig(id="c", url="http://unused/c.m3u8")])
    bus = MemoryBus()
    bad = SegmentMessage(channel_id="c", seq=0, duration=2.0, payload=b"\x47" + b"garbage" * 5000)
    good = SegmentMessage(channel_id="c", seq=1, duration=2.0, payload=channel.segment_bytes(1))
    await bus.publish(config.topics.segments, "c", b"not a message at all")
    for segment in (bad, good):
        await bus.publish(config.topics.segments, "c", encode_message(segment))
    worker = InferenceWorker(config, bus, metrics, models)
    await _run_until(bus, worker, config.topics.detections, len(worker.analyzer.detectors("c")))
    events = [
        decode_message(r.value, StreamEvent)
        for r in await bus.consumer([config.topics.stream_events], "check").getmany(timeout_ms=10)
    ]
    assert [(e.kind, e.seq) for e in events] == [(StreamEventKind.DECODE_ERROR, 0)]
    detections = await bus.consumer([config.topics.detections], "check").getmany(timeout_ms=10)
    assert {decode_message(r.value, DetectionMessage).seq for r in detections} == {1}
    assert metrics.registry.get_sample_value("vqm_decode_errors_total", {"channel": "c"}) == 1
    assert (
        metrics.registry.get_sample_value(
            "vqm_invalid_messages_total", {"topic": config.topics.segments}
        )
        == 1
    )


async def test_models_loaded_at_warm_up_are_announced_in_model_info(
    metrics: Metrics, models: ModelCache
) -> None:
    config = VqmConfig(channels=[ChannelConfig(id="c", url="http://unused/c.m3u8")]).with_enabled(
        ["audio_artifact"]
    )
    worker = InferenceWorker(config, MemoryBus(), metrics, models)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    for _ in range(200):
        if worker.ready:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 5)
    infos = {s.labels["model"]: s for f in metrics.model_info.collect() for s in f.samples}
    assert "audio_artifact" in infos  # models of other tests in this process may be there too
    assert infos["audio_artifact"].labels["provider"] == "CPUExecutionProvider"
    assert infos["audio_artifact"].value == 1


async def test_channels_of_one_poll_are_analysed_side_by_side_each_in_order(
    channel: SyntheticChannel, metrics: Metrics, models: ModelCache
) -> None:
    config = VqmConfig(
        channels=[ChannelConfig(id=c, url=f"http://unused/{c}.m3u8") for c in ("a", "b")]
    )
    bus = MemoryBus()
    for seq in (0, 1, 2):
        for c in ("a", "b"):
            segment = SegmentMessage(
                channel_id=c, seq=seq, duration=2.0, payload=channel.segment_bytes(seq)
            )
            await bus.publish(config.topics.segments, c, encode_message(segment))
    worker = InferenceWorker(config, bus, metrics, models)
    per_segment = len(worker.analyzer.detectors("a"))
    await _run_until(bus, worker, config.topics.detections, 6 * per_segment)
    consumer = bus.consumer([config.topics.detections], "check")
    found = [
        decode_message(r.value, DetectionMessage)
        for r in await consumer.getmany(timeout_ms=10, max_records=1000)
    ]
    for c in ("a", "b"):
        seqs = [d.seq for d in found if d.channel_id == c]
        assert seqs == sorted(seqs) and set(seqs) == {0, 1, 2}


def _tiny_segment(width: int, height: int, seconds: float = 1.0) -> bytes:
    """An MPEG-TS segment of ``width`` x ``height`` video (H.264, 4:4:4 so odd sizes encode)."""
    import io

    import av
    import numpy as np

    out = io.BytesIO()
    with av.open(out, "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv444p"
        for i in range(int(25 * seconds)):
            rgb = np.full((height, width, 3), (i * 9) % 256, np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


async def _detections(bus: MemoryBus, topic: str) -> list[DetectionMessage]:
    records = await bus.consumer([topic], "check").getmany(timeout_ms=10, max_records=1000)
    return [decode_message(r.value, DetectionMessage) for r in records]


@pytest.mark.parametrize(
    "size", [(2, 2), (1, 1), (3, 3), (4096, 2)], ids=lambda s: "x".join(map(str, s))
)
async def test_pictures_smaller_than_a_detector_needs_give_verdicts_not_a_crash(
    size: tuple[int, int], metrics: Metrics, models: ModelCache
) -> None:
    config = VqmConfig(channels=[ChannelConfig(id="c", url="http://unused/c.m3u8")])
    bus = MemoryBus()
    payload = _tiny_segment(*size)
    await bus.publish(
        config.topics.segments,
        "c",
        encode_message(SegmentMessage(channel_id="c", seq=0, duration=1.0, payload=payload)),
    )
    worker = InferenceWorker(config, bus, metrics, models)
    video_detectors = {d.key for d in worker.analyzer.detectors("c") if d.needs.luma}
    await _run_until(bus, worker, config.topics.detections, len(worker.analyzer.detectors("c")))
    found = {d.detector: d for d in await _detections(bus, config.topics.detections)}
    assert video_detectors <= set(found)
    assert all(found[k].error is None for k in video_detectors)  # freeze and black cope


async def test_a_detector_that_raises_gives_an_error_verdict_and_the_rest_carry_on(
    channel: SyntheticChannel, metrics: Metrics, models: ModelCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    from monitor.inference.detectors.freeze import FreezeDetector

    def explode(self: FreezeDetector, segment: object) -> list[object]:
        raise ValueError("zero-size array to reduction operation maximum")

    monkeypatch.setattr(FreezeDetector, "detect", explode)
    config = VqmConfig(channels=[ChannelConfig(id="c", url="http://unused/c.m3u8")])
    bus = MemoryBus()
    await publish(bus, channel, (0, 1))
    worker = InferenceWorker(config, bus, metrics, models)
    keys = {d.key for d in worker.analyzer.detectors("c")}
    await _run_until(bus, worker, config.topics.detections, 2 * len(keys))
    found = await _detections(bus, config.topics.detections)
    assert sorted((d.seq, d.detector) for d in found) == sorted(
        (s, k) for s in (0, 1) for k in keys
    )
    freeze = [d for d in found if d.detector == "freeze"]
    assert all(d.error and "zero-size array" in d.error and not d.spans for d in freeze)
    assert all(d.error is None for d in found if d.detector != "freeze")
    errors = {"channel": "c", "detector": "freeze"}
    assert metrics.registry.get_sample_value("vqm_detector_errors_total", errors) == 2


async def test_a_record_that_keeps_failing_is_skipped_as_poison_and_the_next_is_analysed(
    channel: SyntheticChannel, metrics: Metrics, models: ModelCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    from monitor.inference.worker import SegmentAnalyzer

    real = SegmentAnalyzer.analyse

    def analyse(self: SegmentAnalyzer, segment: SegmentMessage):  # type: ignore[no-untyped-def]
        if segment.seq == 0:
            raise MemoryError("a segment nobody can analyse")
        return real(self, segment)

    monkeypatch.setattr(SegmentAnalyzer, "analyse", analyse)
    config = VqmConfig(channels=[ChannelConfig(id="c", url="http://unused/c.m3u8")])
    bus = MemoryBus()
    await publish(bus, channel, (0, 1))
    worker = InferenceWorker(config, bus, metrics, models)
    await _run_until(bus, worker, config.topics.detections, len(worker.analyzer.detectors("c")))
    assert {d.seq for d in await _detections(bus, config.topics.detections)} == {1}
    topic = {"topic": config.topics.segments}
    assert metrics.registry.get_sample_value("vqm_poison_records_total", topic) == 1
    # Committed: a worker of the same group starting now is not handed the poison record again.
    again = bus.consumer([config.topics.segments], "vqm-inference")
    assert await again.getmany(timeout_ms=10) == []


async def test_loudness_readings_travel_with_the_detection_and_as_gauges(
    channel: SyntheticChannel, metrics: Metrics, models: ModelCache
) -> None:
    config = VqmConfig(channels=[ChannelConfig(id="c", url="http://unused/c.m3u8")])
    bus = MemoryBus()
    await publish(bus, channel, range(3))
    worker = InferenceWorker(config, bus, metrics, models)
    await _run_until(bus, worker, config.topics.detections, 3 * len(worker.analyzer.detectors("c")))
    loudness = [
        d for d in await _detections(bus, config.topics.detections) if d.detector == "loudness"
    ]
    assert len(loudness) == 3 and all("momentary_lufs" in d.measurements for d in loudness)
    assert "short_term_lufs" in loudness[-1].measurements  # 6 s heard: a 3 s value exists
    gauge = {"channel": "c", "detector": "loudness", "name": "momentary_lufs"}
    value = metrics.registry.get_sample_value("vqm_detector_measurement", gauge)
    assert value == loudness[-1].measurements["momentary_lufs"]


async def test_a_defect_over_two_segments_carries_its_start_on_the_second_segments_span(
    metrics: Metrics, models: ModelCache
) -> None:
    long_black = SyntheticChannel(
        seed=5151, schedule=[Defect(kind="black", start=2.0, duration=4.0)]
    )
    config = VqmConfig(channels=[ChannelConfig(id="c", url="http://unused/c.m3u8")])
    bus = MemoryBus()
    await publish(bus, long_black, (1, 2))
    worker = InferenceWorker(config, bus, metrics, models)
    await _run_until(bus, worker, config.topics.detections, 2 * len(worker.analyzer.detectors("c")))
    consumer = bus.consumer([config.topics.detections], "check")
    found = [
        decode_message(r.value, DetectionMessage) for r in await consumer.getmany(timeout_ms=10)
    ]
    black = {d.seq: d.spans for d in found if d.detector == "black"}
    assert black[1][0].run_start is None  # it begins there
    assert black[2][0].run_start == pytest.approx(black[1][0].start)


class RebalancingBus(MemoryBus):
    """A memory bus whose consumers' first commit is refused, as Kafka refuses one during a
    rebalance (or after a broker restart forgot the group)."""

    refusals = 1

    def consumer(self, topics, group):  # type: ignore[no-untyped-def]
        inner, bus = super().consumer(topics, group), self

        class Refusing(type(inner)):  # type: ignore[misc]
            async def commit(self) -> None:
                if bus.refusals:
                    bus.refusals -= 1
                    raise BusError("commit refused during a rebalance")
                await super().commit()

        inner.__class__ = Refusing
        return inner


async def test_a_refused_commit_is_counted_and_the_stage_carries_on(
    channel: SyntheticChannel, metrics: Metrics, models: ModelCache
) -> None:
    config = VqmConfig(channels=[ChannelConfig(id="c", url="http://unused/c.m3u8")])
    bus = RebalancingBus()
    await publish(bus, channel, (0,))
    worker = InferenceWorker(config, bus, metrics, models)
    per_segment = len(worker.analyzer.detectors("c"))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await publish(bus, channel, (1,))
    deadline = asyncio.get_running_loop().time() + 60
    while bus.published(config.topics.detections) < 2 * per_segment:
        assert not task.done(), task  # the refused commit did not end the stage
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 10)
    counted = metrics.bus_errors.labels(topic=config.topics.segments)._value.get()
    assert counted == 1


def _blocks(stride: int) -> BlockCorruptionDetector:
    return BlockCorruptionDetector(BlockCorruptionConfig(enabled=True, stride=stride))


def test_rgb_is_decoded_for_every_frame_some_rgb_reader_of_the_channel_judges() -> None:
    freeze = FreezeDetector(FreezeConfig())  # luma only: no say in the RGB stride
    assert union_needs([freeze]).rgb is False
    alone = union_needs([freeze, _blocks(5)])
    assert alone.rgb and alone.luma and alone.rgb_stride == 5
    assert union_needs([_blocks(4), _blocks(6)]).rgb_stride == 2  # frames 0, 4, 6, 8, 12, ...
    assert union_needs([_blocks(4), _blocks(7)]).rgb_stride == 1
    assert union_needs([_blocks(10), _blocks(1)]).rgb_stride == 1  # one reads every frame


def test_luma_is_kept_whole_only_when_some_detector_of_the_channel_reads_it_whole() -> None:
    from monitor.inference.detectors.av_sync import AvSyncConfig, AvSyncDetector
    from monitor.inference.detectors.black import BlackConfig, BlackDetector
    from monitor.inference.detectors.stutter import StutterConfig, StutterDetector

    views = [
        BlackDetector(BlackConfig()),
        FreezeDetector(FreezeConfig(downscale=2)),
        StutterDetector(StutterConfig()),
    ]
    needs = union_needs(views)
    assert needs.luma and not needs.luma_full
    assert needs.luma_means == (2, 8) and needs.mean_factors() == (2,)  # 8 derives from 2
    assert needs.luma_sparse == (4,)
    assert union_needs([*views, AvSyncDetector(AvSyncConfig(enabled=True))]).luma_full


def test_default_detectors_find_the_same_defects_in_views_as_in_whole_pictures() -> None:
    from monitor.inference.detectors.black import BlackConfig, BlackDetector
    from monitor.inference.detectors.stutter import StutterConfig, StutterDetector
    from monitor.inference.media import decode_bytes

    defects = [
        Defect(kind="black", start=0.3, duration=0.8),
        Defect(kind="freeze", start=2.2, duration=1.5),
    ]
    channel = SyntheticChannel(
        seed=3, width=320, height=180, segment_duration=2.0, schedule=defects
    )
    kinds = [
        (BlackDetector, BlackConfig()),
        (FreezeDetector, FreezeConfig()),
        (StutterDetector, StutterConfig()),
    ]
    found = {}
    for full in (True, False):
        detectors = [cls(config) for cls, config in kinds]
        needs = dataclasses.replace(union_needs(detectors), luma_full=full)
        spans = []
        for index in range(2):
            segment = decode_bytes(channel.segment_bytes(index), needs)
            assert (segment.luma.size > 0) is full
            spans += [(d.key, s) for d in detectors for s in d.detect(segment)]
        found[full] = spans
    assert {k for k, _ in found[True]} >= {"black", "freeze"}  # the test can fail
    assert found[False] == found[True]


async def test_candidates_are_kept_every_nth_segment_and_a_store_that_fails_costs_nothing(
    channel: SyntheticChannel, metrics: Metrics, models: ModelCache, tmp_path: Path
) -> None:
    config = VqmConfig(channels=[ChannelConfig(id="c", url="http://unused/c.m3u8")])
    config = config.with_enabled(["block_corruption"])
    per_segment = len(config.detectors_for(config.channel("c")))
    for root, kept in ((tmp_path / "candidates", [0, 2]), (tmp_path / "a-file", [])):
        if not kept:
            root.write_bytes(b"")  # the store's folder is a file: every write fails
        bus = MemoryBus()
        await publish(bus, channel, range(4))
        store = SampleStore(root)
        worker = InferenceWorker(config, bus, metrics, models, candidates=store, candidates_every=2)
        await _run_until(bus, worker, config.topics.detections, 4 * per_segment)
        assert bus.published(config.topics.detections) == 4 * per_segment
        assert [m.seq for m in store.all()] == kept
        for meta in store.all():
            assert meta.detectors == ["block_corruption"] and len(meta.embedding or []) == 192
            assert meta.score is not None and meta.threshold == 0.9
    assert metrics.registry.get_sample_value("vqm_sample_errors_total", {"channel": "c"}) == 2


def test_a_thumbnail_of_a_segment_decoded_as_views_shows_its_finest_view() -> None:
    means = np.full((3, 45, 80), 119.6, np.float32)  # block means: float
    held = DecodedSegment(means={4: means}, sparse={8: np.zeros((3, 23, 40), np.uint8)})
    jpeg = thumbnail_jpeg(held)
    assert jpeg is not None
    picture = cv2.imdecode(np.frombuffer(base64.b64decode(jpeg), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert picture.shape == (108, 192)
    assert abs(float(picture.mean()) - 120) <= 2  # the means' view, not the sparse one
