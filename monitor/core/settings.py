"""Deployment settings: one pydantic-settings class read from the environment (``VQM_*``).

    settings = Settings()                         # VQM_KAFKA_BOOTSTRAP, VQM_REDIS_URL, ...
    settings = Settings(api_port=9000)            # a command-line option wins

Channels and detector thresholds are not here: they are in the channels file
(:mod:`monitor.app.config`). These are the things that differ between deployments of the same
channel list: where the broker and Redis are, the API's address and token, ONNX providers.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from monitor.core.bus import DEFAULT_MAX_BYTES

PLACEHOLDER_TOKENS = frozenset({"changeme", "secret", "token"})


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
    public_url: AnyHttpUrl | None = Field(
        default=None,
        description="The URL people reach the API and status wall at (https://vqm.example); "
        "pages link to the channel's tile and its picture there. Unset: pages carry no links.",
    )
    link_secret: SecretStr | None = Field(
        default=None,
        min_length=16,
        description="Key that signs the picture links in pages; default: derived from "
        "api_token. With neither, pages carry no picture.",
    )
    link_ttl: float = Field(
        default=24 * 3600.0,
        gt=0,
        le=7 * 24 * 3600.0,
        description="Seconds a picture link in a page stays valid (at most a week: pictures "
        "are kept as long as the alert history).",
    )
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="Log lines on stderr: text for people, json (one object a line, with "
        "channel, detector, alert_id and trace_id) for a log pipeline.",
    )
    revision: str = Field(
        default="unknown",
        description="Source revision this build is of, for vqm_build_info (the image sets it).",
    )
    onnx_providers: str = Field(
        default="TensorrtExecutionProvider,CUDAExecutionProvider,CPUExecutionProvider",
        description="ONNX Runtime providers in order of preference; unavailable ones skipped.",
    )
    model_dir: str | None = Field(default=None, description="Where models are; default shipped.")
    model_reload_interval: float = Field(
        default=10.0,
        ge=0,
        description="Seconds between looks at the model directory for new versions of the "
        "loaded models, swapped in between segments without a restart; 0: never.",
    )
    data_dir: str | None = Field(
        default=None,
        description="Where this process keeps operator feedback (one-process mode; the "
        "distributed mode keeps it in Redis) and the sample store of flagged segments; "
        "unset: $XDG_DATA_HOME/vqm, else ~/.local/share/vqm.",
    )
    samples_per_channel: int = Field(
        default=200, ge=0, description="Samples a channel keeps; 0: none."
    )
    samples_max_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1, description="Bytes the sample store takes at most."
    )
    samples_retention: float = Field(
        default=14 * 24 * 3600.0, gt=0, description="Seconds a sample is kept at most."
    )
    candidates_every: int = Field(
        default=10,
        ge=0,
        description="One segment in this many, per channel, leaves an annotation candidate "
        "(a frame a learned detector judged, with its score and embedding) for "
        "`vqm label queue`; 0: none.",
    )
    candidates_per_channel: int = Field(
        default=100, ge=1, description="Annotation candidates a channel keeps."
    )
    candidates_max_bytes: int = Field(
        default=256 * 1024 * 1024, ge=1, description="Bytes the candidates take at most."
    )
    lease_ttl: float = Field(
        default=10.0,
        gt=0,
        description="Distributed ingest: seconds a channel lease lasts without renewal; a dead "
        "worker's channels move to the others within two of them.",
    )
    memory_bus_max_bytes: int = Field(
        default=DEFAULT_MAX_BYTES,
        gt=0,
        description="One-process mode: bytes per topic the memory bus holds for a stage that "
        "falls behind; beyond it the oldest records are dropped (vqm_bus_dropped_records).",
    )
    worker_id: str | None = Field(
        default=None, description="This process's name in channel leases; default host-pid."
    )

    @field_validator("api_token")
    @classmethod
    def _no_placeholder(cls, value: str | None) -> str | None:
        if value in PLACEHOLDER_TOKENS:
            raise ValueError("api_token is a placeholder; set a real token")
        return value

    @model_validator(mode="after")
    def _read_token_needs_a_token(self) -> Settings:
        if self.api_read_token_required and not self.api_token:
            raise ValueError("api_read_token_required needs api_token; set VQM_API_TOKEN")
        return self

    @property
    def api_on_loopback(self) -> bool:
        """Whether the API listens on this machine only (127.0.0.0/8, ::1, localhost)."""
        if self.api_host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.api_host).is_loopback
        except ValueError:
            return False

    @property
    def open_for_changes(self) -> bool:
        """Changing API calls without a token: only a local environment on loopback."""
        return self.environment == "local" and self.api_on_loopback

    @property
    def data_path(self) -> Path:
        """``data_dir``, or the user's data directory by the XDG rule."""
        if self.data_dir:
            return Path(self.data_dir).expanduser()
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return Path(base) / "vqm"

    @property
    def providers(self) -> list[str]:
        """``onnx_providers`` as a list: ``"A,B, C"`` -> ``["A", "B", "C"]``."""
        return [p.strip() for p in self.onnx_providers.split(",") if p.strip()]
