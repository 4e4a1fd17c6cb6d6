"""What every stage reads of the channels file: the channels, and per-detector alert settings.

The channels file is one YAML document (:mod:`monitor.app.config` loads it). Each stage owns
its own section of it (``ingest:`` in :mod:`stream_ingest.config`, ``alerting:`` and
``notifications:`` in :mod:`alerting.config`, detector settings in the plugins of
:mod:`monitor.inference.detectors`); the application config composes them. What all of them
share is defined here, free of any stage:

* :class:`ChannelConfig`: one channel (id, source URL, severity, detector overrides);
* :class:`DetectorConfig`: the settings every detector plugin has, which alerting applies
  (``min_duration``, ``recovery``, ``severity``); plugins subclass it with their thresholds;
* :class:`Channels`: the read-only view of the whole file that stages are given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Literal, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field

from monitor.core.bus import Topics

Severity = Literal["critical", "major", "minor", "warning", "info"]
# Between a channel's id and a variant's label in a sub-channel id ("news@720p").
RENDITION_SEPARATOR = "@"


def parent_channel_id(channel_id: str) -> str | None:
    """The configured channel a sub-channel id (``news@720p``) belongs to; None for others."""
    parent, sep, label = channel_id.partition(RENDITION_SEPARATOR)
    return parent if sep and parent and label else None


class StrictModel(BaseModel):
    """A config section: an unknown key is an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid")


class DetectorConfig(StrictModel):
    """Settings every detector has; plugins add their own thresholds."""

    type: str
    enabled: bool = Field(default=True, description="Run this detector on the channel.")
    min_duration: float = Field(
        default=2.0, ge=0.0, description="Seconds a defect must last before an alert opens."
    )
    recovery: float = Field(
        default=1.0, ge=0.0, description="Seconds of clean media before an open alert resolves."
    )
    severity: str | None = Field(
        default=None, description="Overrides the channel's severity for this detector."
    )

    def label_min_durations(self) -> dict[str, float]:
        """Labels whose alerts open after a different ``min_duration`` (e.g. a true-peak over
        alerts at once while too-loud programme must last); none by default."""
        return {}


class ChannelConfig(StrictModel):
    """One live channel to follow.

    ``detectors`` holds this channel's overrides; the application config narrows its type to
    the union of the plugins' configs, so every stage validates the same file the same way.
    """

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="Stable key.")
    name: str | None = Field(default=None, description="Display name; defaults to the id.")
    url: str = Field(
        description="Where the channel comes from; its scheme picks the ingest source "
        "(http/https: an HLS playlist; udp/rtp: MPEG-TS datagrams, unicast or multicast; "
        "srt: MPEG-TS over SRT)."
    )
    severity: Severity = Field(default="major", description="Severity of this channel's alerts.")
    allow_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts besides the playlist's own that its variant, segment, map and key "
        "URIs may name (shell patterns, e.g. '*.cdn.example.net'); link-local and cloud "
        "metadata addresses only when listed here.",
    )
    variant: Literal["highest", "lowest", "all"] | Annotated[int, Field(gt=0)] = Field(
        default="highest",
        description="Which variant of a master playlist to follow: the highest or lowest "
        "BANDWIDTH, the one nearest a bandwidth in bits/s, or 'all': every variant, each "
        "published as the sub-channel '<id>@<rendition>' (e.g. 'news@720p').",
    )
    audio_language: str | None = Field(
        default=None,
        description="Of a variant's separate audio renditions, the one in this language "
        "(EXT-X-MEDIA LANGUAGE, e.g. 'en'); by default the DEFAULT=YES one. Its sound is "
        "joined to the video segments.",
    )
    ad_breaks: Literal["page", "suppress"] = Field(
        default="page",
        description="'suppress': black and silence that begin inside an ad break the stream "
        "signals (SCTE-35 CUE-OUT/IN, EXT-X-DATERANGE) are recorded but not paged while the "
        "break lasts; 'page': they page like any other.",
    )
    detectors: Sequence[DetectorConfig] = Field(
        default_factory=list, description="Per-channel detector overrides, by type."
    )

    @property
    def display_name(self) -> str:
        return self.name or self.id

    def rendition(self, label: str) -> Self:
        """The sub-channel that follows one variant of this ``variant: all`` channel: the same
        settings under the id ``<id>@<label>``. ``@`` is outside the ids a channels file may
        use, so a sub-channel never collides with a configured channel."""
        return self.model_copy(
            update={
                "id": f"{self.id}{RENDITION_SEPARATOR}{label}",
                "name": f"{self.display_name} {label}",
            }
        )


class Channels(Protocol):
    """The channels file as stages read it (the application config implements it)."""

    @property
    def channels(self) -> Sequence[ChannelConfig]: ...

    @property
    def topics(self) -> Topics: ...

    def channel(self, channel_id: str) -> ChannelConfig:
        """The channel with this id; :class:`KeyError` when none has it."""
        ...

    def detectors_for(self, channel: ChannelConfig) -> Mapping[str, DetectorConfig]:
        """The enabled detectors of ``channel``: plugin defaults, file defaults, overrides."""
        ...

    def detectors_for_defaults(self) -> Mapping[str, DetectorConfig]:
        """The enabled detectors of a channel the file does not list (scans, strays)."""
        ...
