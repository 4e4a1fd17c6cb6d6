"""Alert records as they are stored, served by the API and sent to notifiers."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class AlertState(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class AlertTransition(StrEnum):
    OPENED = "opened"
    UPDATED = "updated"
    RESOLVED = "resolved"


class Alert(BaseModel):
    """One defect on one channel, from open to resolve.

    ``start``/``end`` are media time (stream PTS seconds); ``opened_at`` etc. are wall clock,
    epoch seconds. ``id`` is stable for the alert's life: notifiers use it as dedup key.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    channel_id: str
    detector: str = Field(description="Detector key, or 'stream' for ingest findings.")
    label: str | None = None
    severity: str = "major"
    state: AlertState = AlertState.OPEN
    start: float
    end: float
    confidence: float = 0.0
    offset_ms: float | None = None
    opened_at: float
    updated_at: float
    resolved_at: float | None = None
    summary: str = ""


class AlertEvent(BaseModel):
    """A transition of an alert, as listeners (console, notifiers) receive it."""

    model_config = ConfigDict(extra="forbid")

    transition: AlertTransition
    alert: Alert
