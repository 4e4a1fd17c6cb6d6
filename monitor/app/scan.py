"""``vqm scan``: check a recording, a segment or a VOD playlist with the live detectors.

The input is decoded in chunks (a file) or segment by segment (a playlist URL), every
chunk goes through the same detectors the live path runs, and the per-chunk results are
joined into defect intervals by the same tracker alerting uses. Times in the output are
seconds from the input's first decoded frame.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from alerting.intervals import join_offline
from monitor.app.config import VqmConfig
from monitor.core.errors import VqmError
from monitor.core.messages import DefectSpan, SegmentMessage
from monitor.core.settings import Settings
from monitor.inference.detectors.base import Detector
from monitor.inference.detectors.registry import build
from monitor.inference.media import DecodeError, iter_decoded
from monitor.inference.models import ModelCache
from monitor.inference.segment import DecodedSegment
from monitor.inference.worker import run_detector, union_needs

logger = logging.getLogger(__name__)


class ScanError(VqmError, RuntimeError):
    """The input cannot be scanned; the message is the one line printed on stderr."""


class Defect(BaseModel):
    """One line of ``--format jsonl`` output (the DESIGN.md contract)."""

    model_config = ConfigDict(extra="forbid")

    detector: str
    label: str | None = None
    start: float
    end: float
    offset_ms: float | None = None
    confidence: float

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)


@dataclass
class _Results:
    """Per detector, the (start, end, spans) of every chunk, in order."""

    by_detector: dict[str, list[tuple[float, float, list[DefectSpan]]]]


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def scan(
    source: str,
    config: VqmConfig | None = None,
    chunk_seconds: float = 2.0,
    settings: Settings | None = None,
) -> list[Defect]:
    """Every defect in ``source``, sorted by start time; raises :class:`ScanError`.

    Learned detectors load their models (``settings.model_dir``, default shipped) into a cache
    that lives as long as the scan."""
    config = config or VqmConfig()
    settings = settings or Settings()
    models = ModelCache(settings.model_dir, settings.providers)
    try:
        detectors = [build(c, models) for c in config.detectors_for_defaults().values()]
        for detector in detectors:
            detector.warm_up()
        chunks = (
            _playlist_chunks(source, config, detectors)
            if is_url(source) and _is_playlist(source)
            else _file_chunks(source, detectors, chunk_seconds)
        )
        results = _analyse(chunks, detectors)
        return _intervals(results, detectors)
    finally:
        models.close()


def _is_playlist(source: str) -> bool:
    return source.split("?")[0].lower().endswith((".m3u8", ".m3u"))


def _file_chunks(
    source: str, detectors: list[Detector], chunk_seconds: float
) -> Iterator[DecodedSegment]:
    try:
        yield from iter_decoded(source, union_needs(detectors), chunk_seconds)
    except DecodeError as exc:
        raise ScanError(f"{source}: {exc}") from exc


def _playlist_chunks(
    source: str, config: VqmConfig, detectors: list[Detector]
) -> Iterator[DecodedSegment]:
    from monitor.inference.media import decode_bytes
    from stream_ingest.vod import fetch_vod_segments

    # One segment at a time: each is fetched, decoded and analysed before the next is fetched,
    # so a long playlist never sits in memory whole.
    needs = union_needs(detectors)
    loop = asyncio.new_event_loop()
    segments: AsyncGenerator[SegmentMessage, None] = fetch_vod_segments(source, config.ingest)
    try:
        for i in itertools.count():
            try:
                segment = loop.run_until_complete(anext(segments))
            except StopAsyncIteration:
                return
            except Exception as exc:  # noqa: BLE001 - any fetch failure ends the scan, one line
                raise ScanError(f"{source}: {exc}") from exc
            try:
                yield decode_bytes(segment.payload, needs)
            except DecodeError as exc:
                logger.warning("segment %d of %s does not decode: %s", i, source, exc)
    finally:
        loop.run_until_complete(segments.aclose())
        loop.close()


def _analyse(chunks: Iterator[DecodedSegment], detectors: list[Detector]) -> _Results:
    by_detector: dict[str, list[tuple[float, float, list[DefectSpan]]]] = {
        d.key: [] for d in detectors
    }
    origin: float | None = None
    for number, chunk in enumerate(chunks):
        if origin is None:
            origin = chunk.video_times[0] if chunk.has_video else chunk.audio_start
        for detector in detectors:
            found, error = run_detector(detector, chunk, "scan", number)
            if error is not None:
                continue  # no verdict for this stretch: neither clean nor defective
            spans = [_shift(s, -origin) for s in found]
            start, end = detector.analysed_span(chunk)
            by_detector[detector.key].append((start - origin, end - origin, spans))
    if origin is None:
        raise ScanError("no decodable frames")
    return _Results(by_detector)


def _shift(span: DefectSpan, delta: float) -> DefectSpan:
    return span.model_copy(update={"start": span.start + delta, "end": span.end + delta})


def _intervals(results: _Results, detectors: list[Detector]) -> list[Defect]:
    out: list[Defect] = []
    for detector in detectors:
        config = detector.config
        joined = join_offline(
            detector.key,
            results.by_detector[detector.key],
            config.min_duration,
            config.recovery,
            label_min_durations=config.label_min_durations(),
        )
        out.extend(Defect.model_validate(_contract(detector.key, item)) for item in joined)
    return sorted(out, key=lambda d: (d.start, d.detector))


def _contract(detector: str, item: dict) -> dict:
    """Keep the contract's keys, rounded for people and diff tools."""
    row = {
        "detector": detector,
        "start": round(max(0.0, float(item["start"])), 3),
        "end": round(float(item["end"]), 3),
        "confidence": round(float(item.get("confidence", 0.0)), 3),
    }
    if item.get("label"):
        row["label"] = item["label"]
    if item.get("offset_ms") is not None:
        row["offset_ms"] = round(float(item["offset_ms"]))
    return row
