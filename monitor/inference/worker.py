"""The inference worker: segments in, detections out.

Each segment is decoded once (in a thread, so the event loop keeps serving the API and the
bus; segments of different channels from one poll side by side), handed to every enabled
detector of its channel, and one :class:`DetectionMessage` per
detector is published; the first of them carries a small JPEG of one frame for the status
wall. The consumer commits only after every detection of the batch was
acknowledged, so a crash replays the batch and downstream dedup absorbs the repeats.

With ``reload_interval`` set, a :class:`~monitor.inference.reload.ModelWatcher` stages new
model versions copied into the model directory, and the worker puts them in place between
polls, so every segment runs on one version and none is dropped for a reload.

With a :class:`~monitor.core.samples.SampleStore`, each segment in which a detector found a
defect is kept there (bounded), so operator feedback on the alert can be exported with the
frames and sound it was about.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import math
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from monitor.core.bus import Bus, BusError, Consumer, Record
from monitor.core.channels import Channels
from monitor.core.logs import log_context, trace_id_for
from monitor.core.messages import (
    DefectSpan,
    DetectionMessage,
    MessageError,
    SegmentMessage,
    StreamEvent,
    StreamEventKind,
    decode_message,
    encode_message,
)
from monitor.core.metrics import Metrics
from monitor.core.redact import redact_url
from monitor.core.retry import pause
from monitor.core.samples import SampleMeta, SampleStore
from monitor.inference.candidate import Candidate
from monitor.inference.detectors.base import Detector
from monitor.inference.detectors.registry import build
from monitor.inference.engine import OnnxModel
from monitor.inference.media import DecodeError, decode_bytes
from monitor.inference.models import ModelCache
from monitor.inference.reload import ModelWatcher
from monitor.inference.runs import DefectRuns
from monitor.inference.segment import LUMA_LIMIT, DecodedSegment, DecodeNeeds

logger = logging.getLogger(__name__)

POISON_ATTEMPTS = 2  # tries before a record that keeps failing is skipped
BUS_PAUSE = 1.0  # seconds after a bus failure before polling again
# A segment (at most ``max_segment_bytes``, decoded from memory) that takes longer than this
# to analyse is reported and skipped rather than holding its channel up.
ANALYSIS_DEADLINE = 60.0
THUMBNAIL_SIZE = (192, 108)  # width, height: a status wall tile, a few kB as JPEG
THUMBNAIL_QUALITY = 70


def thumbnail_jpeg(decoded: DecodedSegment) -> str | None:
    """Base64 JPEG of the segment's middle frame, colour when decoded, else its luma.

    Only what the detectors already decoded is used, so a channel whose detectors read
    luma alone gets a grey picture rather than paying for an RGB conversion.
    """
    frames = decoded.rgb if decoded.rgb is not None and len(decoded.rgb) else decoded.preview()
    if frames.ndim < 3 or len(frames) == 0 or frames.shape[1] == 0 or frames.shape[2] == 0:
        return None
    frame = frames[len(frames) // 2]
    if frame.dtype != np.uint8:  # a block-means view
        frame = np.clip(np.round(frame), 0, 255).astype(np.uint8)
    frame = np.ascontiguousarray(frame)
    if frame.ndim == 3:
        frame = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    small = cv2.resize(frame, THUMBNAIL_SIZE, interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, THUMBNAIL_QUALITY])
    return base64.b64encode(jpeg.tobytes()).decode("ascii") if ok else None


def candidate_sample(channel_id: str, seq: int, candidate: Candidate) -> tuple[SampleMeta, bytes]:
    """A candidate as the store keeps it: its picture as PNG (lossless: compression would
    add the blocks the model judges), the rest in the metadata."""
    ok, png = cv2.imencode(".png", cv2.cvtColor(candidate.rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError("the candidate's picture does not encode as PNG")
    meta = SampleMeta(
        channel_id=channel_id,
        seq=seq,
        media_start=candidate.frame_time,
        media_end=candidate.frame_time,
        detectors=[candidate.detector],
        container="png",
        frame_time=candidate.frame_time,
        model_version=candidate.model_version,
        score=round(candidate.score, 5),
        threshold=candidate.threshold,
        embedding=[round(float(v), 5) for v in candidate.embedding],
        region_prob=np.round(candidate.region_prob.astype(np.float64), 4).tolist(),
    )
    return meta, png.tobytes()


def _model_labels(model: OnnxModel) -> dict[str, str]:
    return {
        "model": model.name,
        "version": model.version,
        "provider": model.provider,
        "sha256": model.card.sha256,
    }


def union_needs(detectors: list[Detector]) -> DecodeNeeds:
    """Decode only what some detector of the channel reads.

    Luma is kept whole when one of them reads it whole, else only the views they read.
    RGB is converted every N frames where N is the greatest common divisor of the RGB
    readers' strides: each one's frames (multiples of its stride) are multiples of N, and a
    reader of every frame (stride 1) makes it 1.
    """
    colour = [d.needs for d in detectors if d.needs.rgb]
    luma = [d.needs for d in detectors if d.needs.luma]
    return DecodeNeeds(
        luma=bool(luma),
        luma_full=any(n.luma_full for n in luma),
        luma_means=tuple(sorted({f for n in luma for f in n.luma_means})),
        luma_sparse=tuple(sorted({s for n in luma for s in n.luma_sparse})),
        rgb=bool(colour),
        rgb_limit=max((n.rgb_limit for n in colour), key=lambda s: s[0] * s[1], default=LUMA_LIMIT),
        rgb_stride=math.gcd(*(n.rgb_stride for n in colour)) or 1,
        audio=any(d.needs.audio for d in detectors),
        captions=any(d.needs.captions for d in detectors),
    )


@dataclass
class Analysis:
    """What one segment produced: detections, or the reason it could not be decoded."""

    detections: list[DetectionMessage]
    error: str | None = None
    candidates: list[Candidate] = field(default_factory=list)


def run_detector(
    detector: Detector, segment: DecodedSegment, channel_id: str, seq: int
) -> tuple[list[DefectSpan], str | None]:
    """The detector's spans, or ``([], why)`` when it raised: a detector that fails on one
    segment (a picture smaller than it can handle, a bug) gives no verdict for that segment
    and detector, logged in one line; the segment's other detectors and every other channel
    carry on."""
    try:
        with log_context(detector=detector.key):
            return detector.detect(segment), None
    except Exception as exc:
        logger.error(
            "channel %s seq %d: detector %s failed: %s", channel_id, seq, detector.key, repr(exc)
        )
        logger.debug("detector %s traceback", detector.key, exc_info=True)
        return [], f"{detector.key} failed: {exc!r}"[:500]


class SegmentAnalyzer:
    """Runs a channel's detectors over one segment; built once per channel and reused.
    Learned detectors take their models from ``models``, shared by every channel."""

    def __init__(
        self, config: Channels, metrics: Metrics, models: ModelCache, candidates_every: int = 0
    ) -> None:
        self._config = config
        self._metrics = metrics
        self.models = models
        self._detectors: dict[str, list[Detector]] = {}
        self._candidates_every = candidates_every
        self._segments_seen: dict[str, int] = {}
        # Each defect's start, carried on its spans so alerting can name it after losing
        # its state; one channel's segments come here in order (see runs.py).
        self._runs = DefectRuns()

    def detectors(self, channel_id: str) -> list[Detector]:
        if channel_id not in self._detectors:
            try:
                configs = self._config.detectors_for(self._config.channel(channel_id))
            except KeyError:
                logger.warning("segment for unconfigured channel %s: default detectors", channel_id)
                configs = self._config.detectors_for_defaults()
            self._detectors[channel_id] = [build(c, self.models) for c in configs.values()]
        return self._detectors[channel_id]

    def warm_up(self) -> None:
        for channel in self._config.channels:
            for detector in self.detectors(channel.id):
                detector.warm_up()

    def analyse(self, segment: SegmentMessage) -> Analysis:
        """Decode and detect; blocking, run it in a thread."""
        detectors = self.detectors(segment.channel_id)
        started = time.perf_counter()
        try:
            needs = union_needs(detectors)
            decoded = decode_bytes(segment.payload, needs, audio=segment.audio_payload)
        except DecodeError as exc:
            self._metrics.decode_errors.labels(segment.channel_id).inc()
            return Analysis([], error=str(exc))
        decode_time = time.perf_counter() - started
        sampled = self._sampled(segment.channel_id)
        for detector in detectors:
            detector.keep_candidate = sampled
        out = [self._run(d, segment, decoded, decode_time / len(detectors)) for d in detectors]
        if out:
            out[0] = out[0].model_copy(update={"thumbnail_jpeg": self._thumbnail(decoded)})
        self._metrics.segments_processed.labels(segment.channel_id).inc()
        found = [c for c in (d.candidate() for d in detectors) if c is not None] if sampled else []
        return Analysis(out, candidates=found)

    def _sampled(self, channel_id: str) -> bool:
        """One segment in ``candidates_every`` of each channel leaves annotation candidates."""
        if self._candidates_every == 0:
            return False
        seen = self._segments_seen.get(channel_id, 0)
        self._segments_seen[channel_id] = seen + 1
        return seen % self._candidates_every == 0

    def _thumbnail(self, decoded: DecodedSegment) -> str | None:
        """A picture is a nicety: failing to make one never costs the detections."""
        try:
            return thumbnail_jpeg(decoded)
        except (cv2.error, ValueError):
            logger.warning("thumbnail failed; the segment goes without one", exc_info=True)
            return None

    def _run(
        self, detector: Detector, segment: SegmentMessage, decoded: DecodedSegment, share: float
    ) -> DetectionMessage:
        started = time.perf_counter()
        spans, error = run_detector(detector, decoded, segment.channel_id, segment.seq)
        self._metrics.processing_seconds.labels(segment.channel_id, detector.key).observe(
            share + time.perf_counter() - started
        )
        measurements: dict[str, float] = {}
        if error is not None:
            self._metrics.detector_errors.labels(segment.channel_id, detector.key).inc()
        else:
            measurements = self._measurements(detector, segment.channel_id)
            if spans:
                self._metrics.detections.labels(segment.channel_id, detector.key).inc()
        media_start, media_end = detector.analysed_span(decoded)
        if error is None:  # no verdict, no change: like the tracker, runs skip the segment
            spans = self._runs.carry(
                segment.channel_id, detector.key, media_start, media_end, spans
            )
        return DetectionMessage(
            channel_id=segment.channel_id,
            seq=segment.seq,
            detector=detector.key,
            media_start=media_start,
            media_end=media_end,
            spans=spans,
            score=max((s.confidence for s in spans), default=0.0),
            model_name=detector.model_name,
            model_version=detector.model_version,
            fetched_at=segment.fetched_at,
            error=error,
            measurements=measurements,
        )

    def _measurements(self, detector: Detector, channel_id: str) -> dict[str, float]:
        """The detector's readings, each also a ``vqm_detector_measurement`` gauge."""
        values = {k: v for k, v in detector.measurements().items() if math.isfinite(v)}
        for name, value in values.items():
            self._metrics.measurement.labels(channel_id, detector.key, name).set(value)
        return values


class InferenceWorker:
    """Consumes ``topics.segments``, publishes ``topics.detections``.

    worker = InferenceWorker(config, bus, metrics, ModelCache())
    await worker.run(stop)   # returns within about a second of stop.set()

    The model cache belongs to whoever made it (the runtime closes it after the worker stops).
    """

    def __init__(
        self,
        config: Channels,
        bus: Bus,
        metrics: Metrics,
        models: ModelCache,
        group: str = "vqm-inference",
        reload_interval: float | None = None,
        samples: SampleStore | None = None,
        candidates: SampleStore | None = None,
        candidates_every: int = 0,
    ) -> None:
        self._bus = bus
        self.samples = samples
        self.candidates = candidates
        self._topics = config.topics
        self._metrics = metrics
        self._group = group
        every = candidates_every if candidates is not None else 0
        self.analyzer = SegmentAnalyzer(config, metrics, models, every)
        self.watcher = ModelWatcher(models, metrics, reload_interval) if reload_interval else None
        self.ready = False

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.to_thread(self.analyzer.warm_up)
        self._announce_models()
        self.ready = True
        consumer = self._bus.consumer([self._topics.segments], self._group)
        watching = None
        if self.watcher is not None:
            watching = asyncio.create_task(self.watcher.run(stop), name="vqm-model-watch")
        try:
            while not stop.is_set():
                try:
                    await self._poll(consumer)
                except BusError as exc:
                    if not exc.retriable:
                        raise
                    # A broker restart or a rebalance: what was not committed comes again
                    # (to this member or another), so the stage carries on rather than dying.
                    self._metrics.bus_errors.labels(topic=self._topics.segments).inc()
                    logger.warning("inference: %s; carrying on", exc)
                    await pause(stop, BUS_PAUSE)
        finally:
            self.ready = False
            if watching is not None:
                watching.cancel()
                await asyncio.gather(watching, return_exceptions=True)
            await consumer.stop()

    async def _poll(self, consumer: Consumer) -> None:
        records = await consumer.getmany(timeout_ms=1000, max_records=8)
        self._swap_models()  # between segments: the last poll's are done, these not begun
        if records:
            await self._handle_poll(records)
            await consumer.commit()

    def _announce_models(self) -> None:
        """``vqm_model_info`` (and so /readyz) names each model the warm-up loaded."""
        for model in self.analyzer.models.current().values():
            if model is not None:
                self._metrics.model_info.labels(**_model_labels(model)).set(1)

    def _swap_models(self) -> None:
        for old, new in self.analyzer.models.swap_staged():
            if old is not None:
                with contextlib.suppress(KeyError):  # two kinds of one model share a series
                    self._metrics.model_info.remove(*_model_labels(old).values())
            self._metrics.model_info.labels(**_model_labels(new)).set(1)
            self._metrics.model_reloads.labels(model=new.name).inc()
            logger.info("now running %s %s (was %s)", new.name, new.version, old and old.version)

    async def _handle_poll(self, records: list[Record]) -> None:
        """Channels side by side, each channel's segments in order: their decodes overlap,
        and the learned detectors' model calls join into shared batches
        (:mod:`monitor.inference.batching`)."""
        by_channel: dict[str, list[Record]] = {}
        for record in records:
            by_channel.setdefault(record.key, []).append(record)

        async def in_order(channel_records: list[Record]) -> None:
            for record in channel_records:
                await self._handle_or_skip(record)

        await asyncio.gather(*(in_order(rs) for rs in by_channel.values()))

    async def _handle_or_skip(self, record: Record) -> None:
        """Handle a record; one that keeps failing (not for a bus outage, which is raised so
        nothing is committed) is a poison record: counted, logged and skipped, so a restarted
        worker is never handed it again and no channel stalls behind it."""
        for attempt in range(1, POISON_ATTEMPTS + 1):
            try:
                await self._handle(record)
                return
            except BusError:
                raise
            except Exception as exc:
                logger.warning(
                    "%s offset %d (channel %s) failed, attempt %d of %d: %r",
                    record.topic, record.offset, record.key, attempt, POISON_ATTEMPTS, exc,
                )  # fmt: skip
        self._metrics.poison_records.labels(record.topic).inc()
        logger.error("%s offset %d: poison record skipped", record.topic, record.offset)

    async def _handle(self, record: Record) -> None:
        try:
            segment = decode_message(record.value, SegmentMessage)
        except MessageError as exc:
            self._metrics.invalid_messages.labels(record.topic).inc()
            logger.warning("skipping invalid segment message at offset %s: %s", record.offset, exc)
            return
        channel, seq = segment.channel_id, segment.seq
        with log_context(channel=channel, seq=seq, trace_id=trace_id_for(channel, seq)):
            await self._analyse_and_publish(segment)

    async def _analyse_and_publish(self, segment: SegmentMessage) -> None:
        try:
            analysis = await asyncio.wait_for(
                asyncio.to_thread(self.analyzer.analyse, segment), ANALYSIS_DEADLINE
            )
        except TimeoutError:
            # The thread cannot be stopped and finishes on its own; the channel moves on.
            analysis = Analysis([], error=f"not analysed within {ANALYSIS_DEADLINE:g} s")
        if analysis.error is not None:
            logger.warning(
                "channel %s segment %d does not decode: %s",
                segment.channel_id,
                segment.seq,
                analysis.error,
            )
            await self._publish_event(segment, analysis.error)
            return
        for detection in analysis.detections:
            await self._bus.publish(
                self._topics.detections, detection.channel_id, encode_message(detection)
            )
            self._metrics.detection_latency.labels(segment.channel_id, detection.detector).observe(
                max(0.0, detection.detected_at - segment.fetched_at)
            )
        await self._keep_sample(segment, analysis.detections)
        for candidate in analysis.candidates:
            await self._keep_candidate(segment, candidate)

    async def _keep_sample(
        self, segment: SegmentMessage, detections: list[DetectionMessage]
    ) -> None:
        """Keep a flagged segment for training on feedback; failing to costs no detection."""
        flagged = [d for d in detections if d.spans]
        if self.samples is None or not flagged:
            return
        meta = SampleMeta(
            channel_id=segment.channel_id,
            seq=segment.seq,
            media_start=min(d.media_start for d in detections),
            media_end=max(d.media_end for d in detections),
            detectors=sorted({d.detector for d in flagged}),
            container=segment.container,
        )
        try:
            await asyncio.to_thread(self.samples.put, meta, segment.payload)
        except OSError as exc:
            self._metrics.sample_errors.labels(segment.channel_id).inc()
            logger.error("segment %d not kept as a sample: %s", segment.seq, exc)
            return
        self._metrics.samples_kept.labels(segment.channel_id).inc()

    async def _keep_candidate(self, segment: SegmentMessage, candidate: Candidate) -> None:
        """Keep an annotation candidate; failing to costs no detection."""
        assert self.candidates is not None
        try:
            meta, png = await asyncio.to_thread(
                candidate_sample, segment.channel_id, segment.seq, candidate
            )
            await asyncio.to_thread(self.candidates.put, meta, png)
        except (OSError, cv2.error, ValueError) as exc:
            self._metrics.sample_errors.labels(segment.channel_id).inc()
            logger.error("segment %d left no annotation candidate: %s", segment.seq, exc)
            return
        self._metrics.candidates_kept.labels(segment.channel_id, candidate.detector).inc()

    async def _publish_event(self, segment: SegmentMessage, detail: str) -> None:
        event = StreamEvent(
            channel_id=segment.channel_id,
            kind=StreamEventKind.DECODE_ERROR,
            detail=detail,
            seq=segment.seq,
            url=redact_url(segment.uri) if segment.uri else None,
        )
        await self._bus.publish(
            self._topics.stream_events, segment.channel_id, encode_message(event)
        )
