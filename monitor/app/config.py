"""Channel configuration (YAML, strict) and deployment settings (environment, ``VQM_``).

config = load_config("channels.yaml")   # ConfigError names file, line and key
for channel in config.channels:
    detectors = config.detectors_for(channel)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from alerting.config import AlertingConfig
from alerting.models import Severity
from alerting.notifiers.routing import NotificationConfig
from monitor.core.bus import Topics
from monitor.inference.detectors.base import DetectorConfig
from monitor.inference.detectors.registry import config_union, default_configs, detector_class

__all__ = ["Severity"]  # re-exported: alerting.models defines it for the notifier configs


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Built once from the registry: an unknown ``type`` fails naming it and the known ones.
AnyDetectorConfig = config_union()


class ChannelConfig(StrictModel):
    """One live channel to follow."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="Stable key.")
    name: str | None = Field(default=None, description="Display name; defaults to the id.")
    url: str = Field(description="HLS media playlist URL (or a file path for testing).")
    severity: Severity = Field(default="major", description="Severity of this channel's alerts.")
    detectors: list[AnyDetectorConfig] = Field(  # type: ignore[valid-type]
        default_factory=list, description="Per-channel detector overrides, by type."
    )

    @property
    def display_name(self) -> str:
        return self.name or self.id


class IngestConfig(StrictModel):
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
    start: Literal["live_edge", "first"] = Field(
        default="live_edge", description="Start at the newest segment or the oldest listed."
    )


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

    def detectors_for(self, channel: ChannelConfig) -> dict[str, DetectorConfig]:
        """Plugin defaults, overlaid by the file's defaults, overlaid by the channel's."""
        merged = self.detectors_for_defaults()
        override: DetectorConfig
        for override in channel.detectors:
            merged[override.type] = override
        return {k: v for k, v in merged.items() if v.enabled}

    def detectors_for_defaults(self) -> dict[str, DetectorConfig]:
        """Plugin defaults overlaid by the file's defaults (for scans and unknown channels)."""
        merged = default_configs()
        override: DetectorConfig
        for override in self.detectors:
            merged[override.type] = override
        return {k: v for k, v in merged.items() if v.enabled}

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
        for channel in self.channels:
            if channel.id == channel_id:
                return channel
        raise KeyError(channel_id)


class ConfigError(ValueError):
    """A config file that does not validate; the message names file, line and key."""


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


class Settings(BaseSettings):
    """Deployment settings, from the environment (``VQM_*``) or a ``.env`` file."""

    model_config = SettingsConfigDict(env_prefix="VQM_", env_file=".env", extra="ignore")

    environment: Literal["local", "staging", "production"] = "local"
    deployment: str = Field(default="vqm", description="Namespace for state keys and groups.")
    kafka_bootstrap: str | None = Field(default=None, description="host:port,...; unset: memory")
    redis_url: str | None = Field(default=None, description="redis://...; unset: memory state")
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    api_token: str | None = Field(default=None, description="Bearer token for changing calls.")
    api_read_token_required: bool = Field(
        default=False,
        description="Reads under /api need the bearer token too (health, metrics and the "
        "status page itself stay open).",
    )
    log_level: str = "INFO"
    onnx_providers: str = Field(
        default="TensorrtExecutionProvider,CUDAExecutionProvider,CPUExecutionProvider",
        description="ONNX Runtime providers in order of preference; unavailable ones skipped.",
    )
    model_dir: str | None = Field(default=None, description="Where models are; default shipped.")
    lease_ttl: float = Field(
        default=10.0,
        gt=0,
        description="Distributed ingest: seconds a channel lease lasts without renewal; a dead "
        "worker's channels move to the others within two of them.",
    )
    worker_id: str | None = Field(
        default=None, description="This process's name in channel leases; default host-pid."
    )

    @field_validator("api_token")
    @classmethod
    def _no_placeholder(cls, value: str | None) -> str | None:
        if value in {"changeme", "secret", "token"}:
            raise ValueError("api_token is a placeholder; set a real token")
        return value

    @model_validator(mode="after")
    def _read_token_needs_a_token(self) -> Settings:
        if self.api_read_token_required and not self.api_token:
            raise ValueError("api_read_token_required needs api_token; set VQM_API_TOKEN")
        return self
