"""Messages that travel between stages, and their wire format.

Every message is a pydantic model with a schema version. On the wire a message is
``4-byte big-endian header length | JSON header | raw payload``; only segments carry a payload
(the MPEG-TS or fMP4 bytes), so no segment is ever base64-inflated or pickled.

    >>> msg = SegmentMessage(channel_id="news", seq=7, duration=2.0, payload=b"...")
    >>> decode_message(encode_message(msg), SegmentMessage).seq
    7
"""

from __future__ import annotations

import json
import math
import struct
import time
from enum import StrEnum
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
)

from monitor.core.errors import MessageError

__all__ = [
    "DefectSpan",
    "DetectionMessage",
    "INFORMATIONAL_KINDS",
    "Message",
    "MessageError",
    "SegmentMessage",
    "StreamEvent",
    "StreamEventKind",
    "decode_message",
    "encode_message",
    "now",
]

SCHEMA_VERSION = 1
_HEADER_LEN = struct.Struct(">I")


def now() -> float:
    """Wall-clock time in epoch seconds; one place so tests and latency metrics agree."""
    return time.time()


class Message(BaseModel):
    """Base of every message: strict keys, a schema version, a channel key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1  # SCHEMA_VERSION; a Literal so other versions are refused
    channel_id: str = Field(min_length=1, description="Channel identifier; the bus key.")


class SegmentMessage(Message):
    """One media segment fetched by ingest, with its bytes inline."""

    seq: int = Field(ge=0, description="Media sequence number from the playlist.")
    uri: str = Field(default="", description="Where the segment was fetched from.")
    media_start: float = Field(
        default=0.0, description="Start on the playlist timeline (sum of EXTINF), seconds."
    )
    duration: float = Field(ge=0, description="EXTINF duration, seconds.")
    fetched_at: float = Field(default_factory=now, description="Wall clock at fetch, epoch s.")
    discontinuity: bool = Field(default=False, description="EXT-X-DISCONTINUITY before it.")
    container: Literal["mpegts", "fmp4", "unknown"] = "mpegts"
    codecs: str = Field(default="", description="CODECS attribute when the playlist gives it.")
    payload: bytes = Field(default=b"", exclude=True, repr=False)
    audio_payload: bytes = Field(
        default=b"",
        exclude=True,
        repr=False,
        description="The sound of a separate audio rendition that could not be joined into "
        "``payload`` (fMP4): a container of its own (init section and fragments) covering the "
        "segment's time, decoded beside it. Empty when the sound is in ``payload``.",
    )


class DefectSpan(BaseModel):
    """One stretch of a segment where a detector saw a defect."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: float = Field(description="Media time, seconds (stream PTS timeline).")
    end: float
    confidence: float = Field(ge=0.0, le=1.0)
    label: str | None = Field(default=None, description="Sub-class, e.g. 'hum' for audio.")
    offset_ms: float | None = Field(default=None, description="AV offset; + means audio lags.")
    run_start: float | None = Field(
        default=None,
        description="Where the unbroken defect this span continues began, media seconds, when "
        "that was in an earlier segment; set by the inference worker, which sees a channel's "
        "segments in order, so alerting can name the defect after losing its own state.",
    )
    levels: dict[str, float] | None = Field(
        default=None,
        description="How bad, measured from the signal where the detector flagged it, "
        "finite numbers by name (audio_artifact: hum_dbfs, hum_relative_db, clicks_per_s, ...).",
    )

    @field_validator("levels")
    @classmethod
    def _finite_levels(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is not None and not all(math.isfinite(v) for v in value.values()):
            raise ValueError("levels are finite numbers")
        return value

    @model_serializer(mode="wrap")
    def _omit_unset_run_start(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Spans without ``run_start`` or ``levels`` keep their old wire form, which
        consumers of an older release (``extra="forbid"``) still accept during a rolling
        upgrade."""
        data: dict[str, Any] = handler(self)
        for key in ("run_start", "levels"):
            if data.get(key) is None:
                data.pop(key, None)
        return data


class DetectionMessage(Message):
    """One detector's verdict on one segment.

    ``media_start``/``media_end`` is the span the detector analysed; ``spans`` lists the defect
    stretches inside it. An empty ``spans`` means the whole analysed span was clean, which is
    what lets alerting resolve an alert.
    """

    seq: int = Field(ge=0)
    detector: str
    media_start: float
    media_end: float
    spans: list[DefectSpan] = Field(default_factory=list)
    score: float = Field(default=0.0, ge=0.0, le=1.0, description="Max confidence in spans.")
    model_name: str | None = None
    model_version: str | None = None
    fetched_at: float = Field(description="When ingest fetched the segment, epoch s.")
    detected_at: float = Field(default_factory=now)
    error: str | None = Field(default=None, description="Set when the segment did not decode.")
    measurements: dict[str, float] = Field(
        default_factory=dict,
        description="Readings the detector made of the segment (loudness in LUFS, say), "
        "finite numbers by name.",
    )
    thumbnail_jpeg: str | None = Field(
        default=None,
        description="A small JPEG of one frame, base64; on the segment's first detection only.",
        repr=False,
    )

    @property
    def idempotency_key(self) -> str:
        return f"{self.channel_id}:{self.seq}:{self.detector}"


class StreamEventKind(StrEnum):
    HTTP_ERROR = "http_error"
    TIMEOUT = "timeout"
    STALE_PLAYLIST = "stale_playlist"
    PLAYLIST_PARSE = "playlist_parse"
    DISCONTINUITY = "discontinuity"
    GAP = "gap"
    OVERSIZE = "oversize"
    URL_REFUSED = "url_refused"
    TARGET_DURATION = "target_duration"
    DECODE_ERROR = "decode_error"
    RECOVERED = "recovered"
    ENCRYPTION = "encryption"  # a segment whose encryption ingest cannot undo, or its key
    ORIGIN_GAP = "origin_gap"  # EXT-X-GAP: the origin says it has no media there
    AD_BREAK_START = "ad_break_start"  # an SCTE-35 splice out (CUE-OUT, DATERANGE SCTE35-OUT)
    AD_BREAK_END = "ad_break_end"  # the splice back in (or the break's planned end)
    AUDIO_MISSING = "audio_missing"  # a separate audio rendition's sound not joined to a segment

    # MPEG-TS sources (udp, rtp, srt): the first priority of ETSI TR 101 290 and the input.
    INPUT_LOSS = "input_loss"  # no packets for ingest.ts.input_loss_after seconds
    TS_SYNC_LOSS = "ts_sync_loss"  # 1.1: two or more bad sync bytes in a row
    SYNC_BYTE_ERROR = "sync_byte_error"  # 1.2: a packet without 0x47 where one was due
    PAT_ERROR = "pat_error"  # 1.3: no valid PAT within the interval, or a bad one on PID 0
    CONTINUITY_ERROR = "continuity_error"  # 1.4: a continuity counter lost, repeated, reordered
    PMT_ERROR = "pmt_error"  # 1.5: no valid PMT within the interval on a PMT PID
    PID_ERROR = "pid_error"  # 1.6: an audio or video PID the PMT lists is absent
    PCR_ERROR = "pcr_error"  # PCR jumps (2.3) or arrives with jitter beyond the bound
    PROGRAM_CHANGED = "program_changed"  # a new PAT or PMT version: PIDs or streams changed
    SOURCE_ERROR = "source_error"  # the receiver itself failed (a socket, the SRT relay)


# Stream event kinds that report what the origin says, not a failure: never counted as errors.
INFORMATIONAL_KINDS = frozenset(
    {
        StreamEventKind.RECOVERED,
        StreamEventKind.ORIGIN_GAP,
        StreamEventKind.AD_BREAK_START,
        StreamEventKind.AD_BREAK_END,
    }
)


class StreamEvent(Message):
    """A finding about the stream itself rather than its pictures or sound."""

    kind: StreamEventKind
    detail: str = ""
    seq: int | None = None
    url: str | None = None
    status: int | None = Field(default=None, description="HTTP status when there was one.")
    at: float = Field(default_factory=now)
    media_time: float | None = Field(
        default=None,
        description="Where on the playlist timeline it happened (the segment's media_start, "
        "a sum of EXTINF), seconds; set on ad breaks.",
    )

    @model_serializer(mode="wrap")
    def _omit_unset_media_time(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Events without ``media_time`` keep their old wire form (older consumers forbid
        unknown keys)."""
        data: dict[str, Any] = handler(self)
        if data.get("media_time") is None:
            data.pop("media_time", None)
        return data


M = TypeVar("M", bound=Message)


def encode_message(msg: Message) -> bytes:
    """A JSON header, then a segment's bytes: its payload, then its separate audio, whose
    length the header's ``audio_size`` gives (only when there is some: older consumers
    refuse unknown keys)."""
    header = msg.model_dump_json().encode()
    if not isinstance(msg, SegmentMessage):
        return _HEADER_LEN.pack(len(header)) + header
    if msg.audio_payload:
        fields = json.loads(header)
        fields[_AUDIO_SIZE] = len(msg.audio_payload)
        header = json.dumps(fields, separators=(",", ":")).encode()
    return _HEADER_LEN.pack(len(header)) + header + msg.payload + msg.audio_payload


_AUDIO_SIZE = "audio_size"


def _segment_bytes(data: bytes, audio_size: object) -> dict[str, bytes]:
    if not isinstance(audio_size, int) or isinstance(audio_size, bool) or audio_size < 0:
        raise ValueError(f"audio_size {audio_size!r} is not a byte count")
    if audio_size > len(data):
        raise ValueError(f"audio_size {audio_size} exceeds the {len(data)} payload bytes")
    cut = len(data) - audio_size
    return {"payload": bytes(data[:cut]), "audio_payload": bytes(data[cut:])}


def decode_message(data: bytes, cls: type[M]) -> M:
    """Parse wire bytes into ``cls``; raise :class:`MessageError` naming what was wrong."""
    if len(data) < _HEADER_LEN.size:
        raise MessageError(f"{cls.__name__}: {len(data)} bytes is shorter than the header")
    (n,) = _HEADER_LEN.unpack_from(data)
    end = _HEADER_LEN.size + n
    if end > len(data):
        raise MessageError(f"{cls.__name__}: header length {n} exceeds message size")
    try:
        fields = json.loads(data[_HEADER_LEN.size : end])
        if not isinstance(fields, dict):
            raise ValueError(f"header is JSON {type(fields).__name__}, not an object")
        if cls is SegmentMessage:
            fields.update(_segment_bytes(data[end:], fields.pop(_AUDIO_SIZE, 0)))
        return cls.model_validate(fields)
    except (ValueError, ValidationError) as exc:
        raise MessageError(f"{cls.__name__}: {exc}") from exc
