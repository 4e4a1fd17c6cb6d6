"""The channels file: every stage's section composed into one strict, self-describing model.

    config = load_config("channels.yaml")   # ConfigError names file, line and key
    for channel in config.channels:
        detectors = config.detectors_for(channel)

Each section belongs to the stage that reads it: ``ingest`` (:mod:`stream_ingest.config`),
``alerting`` and ``notifications`` (:mod:`alerting.config`), ``detectors`` (the plugins of
:mod:`monitor.inference.detectors`), ``topics`` (:mod:`monitor.core.bus`). Stages are given
this object but type it as the view they read (:class:`monitor.core.channels.Channels` and the
stage's own protocol), so no stage depends on another's settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator

from alerting.config import AlertingConfig, NotificationConfig
from monitor.core import channels as shared
from monitor.core.bus import Topics
from monitor.core.channels import DetectorConfig, StrictModel
from monitor.core.errors import ConfigError
from monitor.inference.detectors.registry import config_union, default_configs, detector_class
from stream_ingest.config import IngestConfig
from stream_ingest.sources.registry import source_class

__all__ = ["ChannelConfig", "ConfigError", "IngestConfig", "VqmConfig", "load_config"]

# Built once from the registry: an unknown ``type`` fails naming it and the known ones.
AnyDetectorConfig = config_union()


class ChannelConfig(shared.ChannelConfig):
    """One live channel, its detector overrides validated by the plugins' configs and its URL
    by the ingest sources' schemes."""

    detectors: list[AnyDetectorConfig] = Field(  # type: ignore[valid-type]
        default_factory=list, description="Per-channel detector overrides, by type."
    )

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        # An unknown scheme is an error naming the known ones; bad options name the option.
        source_class(url).check_url(url)
        return url


class VqmConfig(StrictModel):
    """The whole channels file."""

    channels: list[ChannelConfig] = Field(default_factory=list)
    detectors: list[AnyDetectorConfig] = Field(  # type: ignore[valid-type]
        default_factory=list, description="Defaults for every channel, by type."
    )
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    topics: Topics = Field(default_factory=Topics)
    notifications: NotificationConfig = Field(
        default_factory=NotificationConfig,
        description="Who gets paged: named notifiers and severity routes (none by default).",
    )
    alerting: AlertingConfig = Field(
        default_factory=AlertingConfig, description="Flap suppression and delivery retries."
    )

    @field_validator("channels")
    @classmethod
    def _unique_ids(cls, channels: list[ChannelConfig]) -> list[ChannelConfig]:
        seen: set[str] = set()
        for channel in channels:
            if channel.id in seen:
                raise ValueError(f"duplicate channel id {channel.id!r}")
            seen.add(channel.id)
        return channels

    def detectors_for(self, channel: shared.ChannelConfig) -> dict[str, DetectorConfig]:
        """Plugin defaults, overlaid by the file's defaults, overlaid by the channel's."""
        merged = self._merged_defaults()
        for override in channel.detectors:
            merged[override.type] = override
        return {k: v for k, v in merged.items() if v.enabled}

    def detectors_for_defaults(self) -> dict[str, DetectorConfig]:
        """Plugin defaults overlaid by the file's defaults (for scans and unknown channels)."""
        return {k: v for k, v in self._merged_defaults().items() if v.enabled}

    def _merged_defaults(self) -> dict[str, DetectorConfig]:
        merged = default_configs()
        override: DetectorConfig
        for override in self.detectors:
            merged[override.type] = override
        return merged

    def with_enabled(self, names: list[str]) -> VqmConfig:
        """A copy with the named detectors enabled, keeping any settings the file gave them."""
        configs: list[DetectorConfig] = list(self.detectors)
        given = {d.type: d for d in configs}
        for name in names:
            detector_class(name)  # an unknown name is an error naming the known ones
            base = given.get(name) or default_configs()[name]
            given[name] = base.model_copy(update={"enabled": True})
        return self.model_copy(update={"detectors": list(given.values())})

    def channel(self, channel_id: str) -> ChannelConfig:
        """The channel with this id, or the sub-channel (``news@720p``) of one variant of a
        ``variant: all`` channel, which has its parent's settings; KeyError for others."""
        for channel in self.channels:
            if channel.id == channel_id:
                return channel
        parent = shared.parent_channel_id(channel_id)
        for channel in self.channels:
            if channel.id == parent and channel.variant == "all":
                return channel.rendition(channel_id[len(parent) + 1 :])
        raise KeyError(channel_id)


def load_config(path: str | Path) -> VqmConfig:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return VqmConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(path, node, exc)) from exc


def _describe(path: Path, root: yaml.Node | None, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        loc = [p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        line = _line_of(root, loc)
        where = f"{path}:{line}" if line else str(path)
        key = ".".join(str(p) for p in loc) or "(top level)"
        lines.append(f"{where}: {key}: {error['msg']}")
    return "\n".join(lines)


def _line_of(node: yaml.Node | None, loc: list[Any]) -> int | None:
    """Follow a pydantic error location through the YAML node tree to a 1-based line.

    Parts with no YAML counterpart (the union tag pydantic inserts) are skipped.
    """
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == part), None)
            if pair is None:
                continue
            line, node = pair[0].start_mark.line + 1, pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
    return line
