"""Alert records as they are stored, served by the API and sent to notifiers."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from monitor.core.channels import Severity

__all__ = [
    "Acknowledgement",
    "Alert",
    "AlertEvent",
    "AlertState",
    "AlertTransition",
    "Severity",
    "Silence",
    "SilenceSpec",
    "alert_name",
    "prefixed",
    "runbook_path",
]


def alert_name(detector: str) -> str:
    """An alert's name on both paging paths: vqm's own pages and the Prometheus rule.

    Derived from the detector key (``freeze`` -> ``VqmFreeze``, ``av_sync`` -> ``VqmAvSync``)
    rather than listed, so a new detector's pages are named without a table to keep in step;
    the rule file is tested to name its defect rules the same way.
    """
    return "Vqm" + "".join(part.capitalize() for part in detector.split("_"))


def runbook_path(name: str) -> str:
    """The runbook section of alert ``name``: a path in the repository and its anchor.

    The rule file's ``runbook_url`` annotations are the same paths; both paths put the same
    configured base URL before them (Helm: ``prometheusRule.runbookBaseUrl``).
    """
    return f"docs/runbook.md#{name.lower()}"


def prefixed(base: str, path: str) -> str:
    """``path`` under ``base`` (one slash between them); ``path`` itself when there is none."""
    return f"{base.rstrip('/')}/{path}" if base else path


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
    resolving_since: float | None = Field(
        default=None,
        description="Wall clock when the defect recovered; the resolve is held for the flap "
        "window and cancelled if the defect comes back within it.",
    )
    flaps: int = Field(default=0, ge=0, description="Times the defect came back while held.")
    silenced_by: str | None = Field(
        default=None, description="Id of the silence that matches this alert now, if any."
    )
    unpaged: bool = Field(
        default=False,
        description="A silence kept its opening from pagers, so its resolve is not paged either.",
    )
    picture: bool = Field(
        default=False,
        description="A picture of the channel was kept when the alert opened; pages link to it.",
    )
    acknowledged_at: float | None = Field(
        default=None, description="When someone acknowledged it (filled in on read)."
    )
    acknowledged_by: str | None = None


class AlertEvent(BaseModel):
    """A transition of an alert, as listeners (console, notifiers) receive it."""

    model_config = ConfigDict(extra="forbid")

    transition: AlertTransition
    alert: Alert

    @property
    def pages(self) -> bool:
        """Whether pagers hear of it: silenced openings do not, nor what follows them."""
        if self.transition is AlertTransition.OPENED:
            return self.alert.silenced_by is None
        return not self.alert.unpaged


class Acknowledgement(BaseModel):
    """Someone on call has seen an alert; stored beside the alert so the engine never
    overwrites it when it updates the alert."""

    model_config = ConfigDict(extra="forbid")

    alert_id: str
    by: str = Field(default="", max_length=200, description="Who acknowledged.")
    comment: str = Field(default="", max_length=2000)
    at: float = Field(description="Wall clock, epoch seconds.")


# A wall-clock time a person means: finite (NaN and 1e309 are refused) and before year 5000.
Epoch = Annotated[float, Field(ge=0, le=95_617_584_000, allow_inf_nan=False)]


class SilenceSpec(BaseModel):
    """What a silence matches: a channel, a detector, both, or (neither) every alert.

    ``starts_at``/``ends_at`` bound it in wall-clock epoch seconds (a maintenance window);
    without ``starts_at`` it starts now, without ``ends_at`` it lasts until deleted.
    """

    model_config = ConfigDict(extra="forbid")

    channel_id: str | None = Field(
        default=None, max_length=64, description="Only this channel; any if unset."
    )
    detector: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_]{0,63}$",
        description="Only this detector (or 'stream'); any if unset.",
    )
    starts_at: Epoch | None = Field(default=None, description="Epoch seconds; now if unset.")
    ends_at: Epoch | None = Field(
        default=None, description="Epoch seconds; open-ended (until deleted) if unset."
    )
    comment: str = Field(default="", max_length=2000, description="Why, for the next person.")
    created_by: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _ends_after_start(self) -> SilenceSpec:
        if (
            self.starts_at is not None
            and self.ends_at is not None
            and self.ends_at <= self.starts_at
        ):
            raise ValueError(f"ends_at {self.ends_at} is not after starts_at {self.starts_at}")
        return self


class Silence(SilenceSpec):
    """A stored silence: silenced alerts are recorded and shown, but not paged."""

    id: str
    created_at: float
    starts_at: Epoch | None = None

    def active(self, at: float) -> bool:
        started = self.starts_at is None or self.starts_at <= at
        return started and (self.ends_at is None or at < self.ends_at)

    def expired(self, at: float) -> bool:
        return self.ends_at is not None and at >= self.ends_at

    def matches(self, alert: Alert, at: float) -> bool:
        return (
            self.active(at)
            and (self.channel_id is None or self.channel_id == alert.channel_id)
            and (self.detector is None or self.detector == alert.detector)
        )
