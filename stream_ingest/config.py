"""The ``ingest:`` section of the channels file: how ingest follows its sources.

For example::

    ingest:
      request_timeout: 5
      max_segment_bytes: 16777216
      start: live_edge
      ts:                       # MPEG-TS sources (udp://, rtp://, srt://)
        segment_duration: 2
        input_loss_after: 2
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from pydantic import Field

from monitor.core.bus import Topics
from monitor.core.channels import ChannelConfig, StrictModel
from monitor.core.retry import BackoffSettings, RetryPolicy


class TsConfig(StrictModel):
    """How ingest cuts and checks MPEG-TS received as a stream (udp, rtp, srt)."""

    segment_duration: float = Field(
        default=2.0,
        gt=0,
        description="A segment is cut at the first video keyframe after this many seconds.",
    )
    max_segment_duration: float = Field(
        default=10.0,
        gt=0,
        description="Without a keyframe, a segment is cut at the next PES start after this.",
    )
    input_loss_after: float = Field(
        default=2.0, gt=0, description="No packet for this many seconds: input_loss."
    )
    psi_interval: float = Field(
        default=0.5,
        gt=0,
        description="PAT and each PMT must repeat within this many seconds (TR 101 290: 0.5).",
    )
    pid_loss_after: float = Field(
        default=5.0,
        gt=0,
        description="An audio or video PID of the PMT absent this many seconds: pid_error.",
    )
    pcr_jitter_max: float = Field(
        default=0.25,
        gt=0,
        description="PCR arrival jitter (arrival time against PCR time) beyond this, in "
        "seconds: pcr_error. Network jitter, not the encoder's 500 ns accuracy.",
    )
    report_every: float = Field(
        default=1.0,
        gt=0,
        description="Counted errors (continuity, sync byte, PCR) are one event per this many "
        "seconds at most, with the count.",
    )
    srt_relay: str = Field(
        default="srt-live-transmit",
        description="The SRT relay program (Debian package srt-tools) srt:// channels run.",
    )


class IngestConfig(BackoffSettings, StrictModel):
    """How ingest follows playlists and streams."""

    request_timeout: float = Field(default=5.0, gt=0, description="Seconds per HTTP request.")
    max_retries: int = Field(default=3, ge=0, description="Retries per request before giving up.")
    backoff_base: float = Field(default=0.25, gt=0, description="First retry delay, seconds.")
    backoff_max: float = Field(default=5.0, gt=0, description="Longest retry delay, seconds.")
    stale_after_targets: float = Field(
        default=3.0, gt=0, description="Playlist unchanged for this many target durations: stale."
    )
    max_segment_bytes: int = Field(
        default=16 * 1024 * 1024, gt=0, description="Larger segments are refused with an event."
    )
    min_target_duration: float = Field(
        default=1.0, gt=0, description="A shorter EXT-X-TARGETDURATION is followed as this."
    )
    max_target_duration: float = Field(
        default=30.0, gt=0, description="A longer EXT-X-TARGETDURATION is followed as this."
    )
    start: Literal["live_edge", "first"] = Field(
        default="live_edge",
        description="Start at the newest segment or the oldest listed (unless resuming).",
    )
    position_ttl: float = Field(
        default=3600.0,
        gt=0,
        description="Seconds a channel's last published segment is kept for the next follower.",
    )
    ts: TsConfig = Field(default_factory=TsConfig, description="MPEG-TS stream sources.")

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy of every request ingest makes."""
        return self.retry_policy(self.max_retries)


class IngestView(Protocol):
    """What the ingest stage reads of the channels file (the application config is one)."""

    @property
    def channels(self) -> Sequence[ChannelConfig]: ...

    @property
    def topics(self) -> Topics: ...

    @property
    def ingest(self) -> IngestConfig: ...

    def channel(self, channel_id: str) -> ChannelConfig: ...
