"""Request and response bodies of the API, as the OpenAPI document shows them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from alerting.annotation import CandidateLabel, LabelQueue, QueueItem
from alerting.feedback import Feedback
from alerting.models import Alert, Silence
from alerting.store import ChannelStatus


class ModelInfo(BaseModel):
    """A loaded model as /readyz reports it."""

    name: str
    version: str
    sha256: str | None = Field(default=None, description="Of the model file in use.")
    providers: list[str] = Field(default_factory=list)


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class ReadinessReport(BaseModel):
    status: Literal["ready", "not_ready"]
    components: dict[str, bool]
    models: list[ModelInfo]


class ChannelView(BaseModel):
    id: str
    name: str
    severity: str
    status: ChannelStatus
    up: bool | None = None
    last_segment_at: float | None = Field(default=None, description="Epoch s of newest segment.")
    last_detection_at: float | None = None
    last_event: str | None = Field(default=None, description="Latest stream event kind.")
    active_alerts: list[Alert] = Field(default_factory=list)
    last_thumbnail: str | None = Field(
        default=None, description="URL of the newest thumbnail JPEG; None before the first."
    )
    thumbnail_at: float | None = Field(
        default=None, description="Fetch time of the segment it shows, epoch s."
    )
    measurements: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="Newest readings by detector, e.g. loudness: short_term_lufs.",
    )
    parent: str | None = Field(
        default=None, description="Of a sub-channel (news@720p): the configured channel."
    )
    sub_channels: list[str] = Field(
        default_factory=list,
        description="Of a 'variant: all' channel: the sub-channels seen, listed after it.",
    )


class ChannelList(BaseModel):
    channels: list[ChannelView]


class AlertList(BaseModel):
    alerts: list[Alert]


class AckRequest(BaseModel):
    """Body of an acknowledgement; both fields are for the people reading it later."""

    model_config = ConfigDict(extra="forbid")

    by: str = Field(default="", max_length=200, description="Who acknowledges.")
    comment: str = Field(default="", max_length=2000)


class SilenceView(Silence):
    active_now: bool = Field(description="Whether it matches alerts at this moment.")


class SilenceList(BaseModel):
    silences: list[SilenceView]


class FeedbackList(BaseModel):
    feedback: list[Feedback]


class QueueEntry(QueueItem):
    """A queue item with the answer given for it, if one was."""

    answer: CandidateLabel | None = None


class QueueView(BaseModel):
    """A detector's labelling queue as the labelling page reads it."""

    detector: str
    strategy: str
    budget: int
    created_at: float
    pool: int
    items: list[QueueEntry]
    answered: int = Field(description="Items with an answer.")
    total: int = Field(description="Items in the queue.")

    @classmethod
    def of(cls, queue: LabelQueue, labels: list[CandidateLabel]) -> QueueView:
        by_key = {(label.channel_id, label.seq): label for label in labels}
        items = [
            QueueEntry(**item.model_dump(), answer=by_key.get((item.channel_id, item.seq)))
            for item in queue.items
        ]
        return cls(
            **queue.model_dump(exclude={"items"}),
            items=items,
            answered=sum(entry.answer is not None for entry in items),
            total=len(items),
        )


class LabelList(BaseModel):
    labels: list[CandidateLabel]
