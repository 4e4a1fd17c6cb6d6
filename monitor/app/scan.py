"""``vqm scan``: check a recording, a segment, a VOD playlist or a stream with the live detectors.

The input is decoded in chunks (a file) or segment by segment (a playlist URL; a stream URL,
``udp://``, ``rtp://`` or ``srt://``, recorded for ``record_seconds`` by the channel source
that ``vqm run`` uses), every chunk goes through the same detectors the live path runs, and
the per-chunk results are
joined into defect intervals by the same tracker alerting uses. Times in the output are
seconds from the input's first decoded frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import get_args

from pydantic import BaseModel, ConfigDict

from alerting.intervals import join_offline
from monitor.app.config import VqmConfig
from monitor.core.channels import ChannelConfig, Severity
from monitor.core.errors import VqmError
from monitor.core.messages import DefectSpan, SegmentMessage
from monitor.core.settings import Settings
from monitor.inference.detectors.base import Detector
from monitor.inference.detectors.registry import build, detector_types
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
    levels: dict[str, float] | None = None  # how bad (audio_artifact), the worst over it

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)


@dataclass
class _Results:
    """Per detector, the (start, end, spans) of every chunk, in order."""

    by_detector: dict[str, list[tuple[float, float, list[DefectSpan]]]]
    media_seconds: float = 0.0
    measured: list[tuple[str, DefectSpan]] = field(default_factory=list)  # under the floor


@dataclass(frozen=True)
class ScanReport:
    """What a scan found, and how much media it read (for the summary and the progress)."""

    defects: list[Defect]
    media_seconds: float
    chunks: int
    measured: list[Defect] = field(default_factory=list)  # measured, under the paging floor


# Told the media seconds analysed so far after every chunk (``vqm scan``'s progress bar).
OnChunk = Callable[[float], None]


SEVERITIES: tuple[str, ...] = get_args(Severity)  # most severe first
# A scan has no channel: a detector without its own `severity` counts as a channel's default.
DEFAULT_SEVERITY: str = ChannelConfig.model_fields["severity"].default


@dataclass(frozen=True)
class FailOn:
    """Which defects fail ``vqm scan --fail-on``: those at or above ``severity``, or those
    of ``detector``.

        gate = FailOn.parse("minor", config)     # or "any", or a detector name: "black"
        gate.failing(defects)                    # the defects that make the exit code 1
    """

    value: str
    severities: Mapping[str, str]  # detector -> the severity its defects carry
    severity: str | None = None
    detector: str | None = None

    @classmethod
    def parse(cls, value: str, config: VqmConfig) -> FailOn:
        """Raises ValueError naming what is accepted when ``value`` is neither a severity
        nor a detector this scan runs."""
        running = config.detectors_for_defaults()
        severities = {k: c.severity or DEFAULT_SEVERITY for k, c in running.items()}
        name = value.strip().lower()
        if name == "any":
            return cls(value, severities, severity=SEVERITIES[-1])
        if name in SEVERITIES:
            return cls(value, severities, severity=name)
        if name in running:
            return cls(value, severities, detector=name)
        if name in detector_types():
            raise ValueError(f"--fail-on {value}: {name} is off by default; add --enable {name}")
        raise ValueError(
            f"--fail-on {value!r} is neither a severity ({', '.join(SEVERITIES)}, any) nor a "
            f"detector ({', '.join(sorted(detector_types()))})"
        )

    def severity_of(self, defect: Defect) -> str:
        return self.severities.get(defect.detector, DEFAULT_SEVERITY)

    def failing(self, defects: list[Defect]) -> list[Defect]:
        if self.detector is not None:
            return [d for d in defects if d.detector == self.detector]
        assert self.severity is not None
        return [d for d in defects if _rank(self.severity_of(d)) <= _rank(self.severity)]


def _rank(severity: str) -> int:
    """0 for critical, growing as severity falls; a name outside the list ranks as major."""
    return SEVERITIES.index(severity if severity in SEVERITIES else DEFAULT_SEVERITY)


STREAM_SCHEMES = ("udp://", "rtp://", "srt://")
DEFAULT_RECORD_SECONDS = 30.0


def is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://", *STREAM_SCHEMES))


def is_stream(source: str) -> bool:
    """A live MPEG-TS stream (udp, rtp, srt): recorded for a while, then analysed."""
    return source.lower().startswith(STREAM_SCHEMES)


def scan(
    source: str,
    config: VqmConfig | None = None,
    chunk_seconds: float = 2.0,
    settings: Settings | None = None,
    record_seconds: float = DEFAULT_RECORD_SECONDS,
) -> list[Defect]:
    """Every defect in ``source``, sorted by start time; raises :class:`ScanError`.

    Learned detectors load their models (``settings.model_dir``, default shipped) into a cache
    that lives as long as the scan. A stream URL is recorded for ``record_seconds``."""
    report = scan_report(source, config, chunk_seconds, settings, record_seconds=record_seconds)
    return report.defects


def scan_report(
    source: str,
    config: VqmConfig | None = None,
    chunk_seconds: float = 2.0,
    settings: Settings | None = None,
    on_chunk: OnChunk | None = None,
    record_seconds: float = DEFAULT_RECORD_SECONDS,
) -> ScanReport:
    """:func:`scan` with the media seconds read; ``on_chunk`` hears the position as it goes.

    A stream URL is recorded for ``record_seconds`` of media (less when the sender stops)."""
    config = config or VqmConfig()
    settings = settings or Settings()
    models = ModelCache(settings.model_dir, settings.providers)
    try:
        detectors = [build(c, models) for c in config.detectors_for_defaults().values()]
        for detector in detectors:
            detector.warm_up()
        if is_stream(source):
            recorded = _recorded_segments(source, config, record_seconds)
            chunks = _decoded(recorded, detectors, source)
        elif is_url(source) and _is_playlist(source):
            chunks = _decoded(_playlist_segments(source, config), detectors, source)
        else:
            chunks = _file_chunks(source, detectors, chunk_seconds)
        results = _analyse(chunks, detectors, on_chunk)
        defects = _intervals(results, detectors)
        chunk_count = max((len(v) for v in results.by_detector.values()), default=0)
        measured = [_measured_row(key, s) for key, s in results.measured]
        return ScanReport(defects, round(results.media_seconds, 3), chunk_count, measured)
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


def _decoded(
    segments: Iterator[SegmentMessage], detectors: list[Detector], source: str
) -> Iterator[DecodedSegment]:
    """Each segment decoded as it comes; one that does not decode is logged and skipped."""
    from monitor.inference.media import decode_bytes

    needs = union_needs(detectors)
    for i, segment in enumerate(segments):
        try:
            yield decode_bytes(segment.payload, needs, audio=segment.audio_payload)
        except DecodeError as exc:
            logger.warning("segment %d of %s does not decode: %s", i, source, exc)


def _playlist_segments(source: str, config: VqmConfig) -> Iterator[SegmentMessage]:
    from stream_ingest.vod import fetch_vod_segments

    # One segment at a time: each is fetched, decoded and analysed before the next is fetched,
    # so a long playlist never sits in memory whole.
    loop = asyncio.new_event_loop()
    segments: AsyncGenerator[SegmentMessage, None] = fetch_vod_segments(source, config.ingest)
    try:
        while True:
            try:
                yield loop.run_until_complete(anext(segments))
            except StopAsyncIteration:
                return
            except Exception as exc:  # noqa: BLE001 - any fetch failure ends the scan, one line
                raise ScanError(f"{source}: {exc}") from exc
    finally:
        loop.run_until_complete(segments.aclose())
        loop.close()


def _recorded_segments(source: str, config: VqmConfig, seconds: float) -> Iterator[SegmentMessage]:
    """Record the stream in a thread of its own while segments are decoded by the caller, so
    the socket is read on time however long a segment takes to decode."""
    from stream_ingest.record import record_segments

    handed: queue.Queue[SegmentMessage | BaseException | None] = queue.Queue()

    async def record() -> None:
        segments = record_segments(source, config.ingest, seconds)
        try:
            async for segment in segments:
                handed.put(segment)
        except Exception as exc:  # noqa: BLE001 - handed to the scan, which says it in one line
            handed.put(exc)
        finally:
            await segments.aclose()
            handed.put(None)

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="scan-record", daemon=True)
    thread.start()
    recording = asyncio.run_coroutine_threadsafe(record(), loop)
    try:
        while (item := handed.get()) is not None:
            if isinstance(item, BaseException):
                raise ScanError(f"{source}: {item}") from item
            yield item
    finally:
        recording.cancel()  # the scan ended first (an error, a closed generator)
        with contextlib.suppress(BaseException):
            recording.result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        if not thread.is_alive():
            loop.close()


def _analyse(
    chunks: Iterator[DecodedSegment], detectors: list[Detector], on_chunk: OnChunk | None = None
) -> _Results:
    by_detector: dict[str, list[tuple[float, float, list[DefectSpan]]]] = {
        d.key: [] for d in detectors
    }
    origin: float | None = None
    reached = 0.0
    measured: list[tuple[str, DefectSpan]] = []
    for number, chunk in enumerate(chunks):
        if origin is None:
            origin = chunk.video_times[0] if chunk.has_video else chunk.audio_start
        for detector in detectors:
            found, error = run_detector(detector, chunk, "scan", number)
            if error is not None:
                continue  # no verdict for this stretch: neither clean nor defective
            spans = [_shift(s, -origin) for s in found]
            measured += [(detector.key, _shift(s, -origin)) for s in detector.measured_spans()]
            start, end = detector.analysed_span(chunk)
            by_detector[detector.key].append((start - origin, end - origin, spans))
            reached = max(reached, end - origin)
        if on_chunk is not None:
            on_chunk(reached)
    if origin is None:
        raise ScanError("no decodable frames")
    return _Results(by_detector, reached, measured)


def media_duration(source: str) -> float | None:
    """Seconds of media in a local file, from its container, for a bar's total; None when
    the container does not say (a raw segment, a URL: a spinner then)."""
    if is_url(source):
        return None  # a stream's total is the recording time, which the caller knows
    from monitor.inference.media import probe_duration

    return probe_duration(source)


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
        spans = [s for _, _, found in results.by_detector[detector.key] for s in found]
        out.extend(
            Defect.model_validate({**_contract(detector.key, item), **_levels(item, spans)})
            for item in joined
        )
    return sorted(out, key=lambda d: (d.start, d.detector))


def _levels(item: dict, spans: list[DefectSpan]) -> dict:
    """The worst of each level over the spans inside a joined defect (none: no key)."""
    worst: dict[str, float] = {}
    for span in spans:
        inside = span.end > item["start"] and span.start < item["end"]
        if span.levels and span.label == item.get("label") and inside:
            for key, value in span.levels.items():
                worst[key] = max(value, worst.get(key, value))
    return {"levels": worst} if worst else {}


def _measured_row(detector: str, span: DefectSpan) -> Defect:
    """A span measured under the paging floor, as a row of ``--format json``'s ``measured``."""
    return Defect(
        detector=detector,
        label=span.label,
        start=round(max(0.0, span.start), 3),
        end=round(span.end, 3),
        confidence=round(span.confidence, 3),
        levels=span.levels,
    )


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
