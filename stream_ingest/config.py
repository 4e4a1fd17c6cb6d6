"""The ``ingest:`` section of the channels file: how ingest follows its sources.

For example::

    ingest:
      request_timeout: 5
      max_segment_bytes: 16777216
      start: live_edge
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from pydantic import Field

from monitor.core.bus import Topics
from monitor.core.channels import ChannelConfig, StrictModel
from monitor.core.retry import BackoffSettings, RetryPolicy


class IngestConfig(BackoffSettings, StrictModel):
    """How ingest follows playlists."""

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
