"""The labelling queue: annotation candidates chosen for an operator, and their answers.

Inference keeps annotation candidates (single analysed frames with their score and
embedding, :mod:`monitor.core.samples` under ``<data dir>/candidates``). ``vqm label queue
NAME --budget b`` chooses ``b`` of them (see ``monitor.app.selection``) and stores the
:class:`LabelQueue` here; the status wall's labelling page shows its items one by one and an
operator answers each (:class:`CandidateLabel`: defect or clean, and for block corruption the
patches). ``vqm retrain`` reads the answers beside the alert feedback. Both live in a
:class:`~monitor.core.state.StateStore` (Redis, or the one-process file), kept until deleted.

    store = AnnotationStore(state)
    await store.put_queue(LabelQueue(detector="block_corruption", strategy="seed", ...))
    await store.put_label(CandidateLabel.of(item, CandidateAnswer(verdict="clean", by="ana"), at))
"""

from __future__ import annotations

import logging
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from alerting.feedback import Regions
from monitor.core.state import StateStore

logger = logging.getLogger(__name__)

QUEUES = "label-queue"
LABELS = "candidate-labels"

M = TypeVar("M", bound=BaseModel)


class QueueItem(BaseModel):
    """One candidate to label: which kept frame, and why it was chosen."""

    model_config = ConfigDict(extra="forbid")

    channel_id: str
    seq: int = Field(ge=0)
    frame_time: float
    score: float = Field(description="The model's decision value for the frame.")
    threshold: float = Field(description="Where the score is flagged.")
    model_version: str | None = None

    @property
    def key(self) -> str:
        return f"{self.channel_id}/{self.seq}"


class LabelQueue(BaseModel):
    """What ``vqm label queue`` chose for one detector (a new queue replaces the old)."""

    model_config = ConfigDict(extra="forbid")

    detector: str
    strategy: Literal["seed", "uncertainty", "random"]
    budget: int = Field(ge=1)
    created_at: float
    pool: int = Field(ge=0, description="Unlabelled candidates it chose from.")
    items: list[QueueItem]


class CandidateAnswer(BaseModel):
    """Body of ``POST /api/labels/{detector}/items/{channel}/{seq}``."""

    model_config = ConfigDict(extra="forbid")

    verdict: Literal["defect", "clean"]
    by: str = Field(min_length=1, max_length=200, description="Who answers.")
    regions: Regions | None = Field(
        default=None, description="Block corruption only: the patches with the defect."
    )


class CandidateLabel(BaseModel):
    """One operator's answer for one candidate, as stored and read by ``vqm retrain``."""

    model_config = ConfigDict(extra="forbid")

    detector: str
    channel_id: str
    seq: int
    frame_time: float
    verdict: Literal["defect", "clean"]
    by: str
    at: float
    regions: Regions | None = None

    @property
    def key(self) -> str:
        return f"{self.detector}/{self.channel_id}/{self.seq}"

    @classmethod
    def of(
        cls, detector: str, item: QueueItem, answer: CandidateAnswer, at: float
    ) -> CandidateLabel:
        return cls(
            detector=detector,
            channel_id=item.channel_id,
            seq=item.seq,
            frame_time=item.frame_time,
            at=at,
            **answer.model_dump(),
        )


class AnnotationStore:
    """Queues by detector and answers by candidate in two namespaces of a StateStore."""

    def __init__(self, state: StateStore) -> None:
        self.state = state

    async def put_queue(self, queue: LabelQueue) -> None:
        await self.state.set(QUEUES, queue.detector, queue.model_dump_json())

    async def queue(self, detector: str) -> LabelQueue | None:
        raw = await self.state.get(QUEUES, detector)
        return _parse(LabelQueue, detector, raw)

    async def put_label(self, label: CandidateLabel) -> None:
        await self.state.set(LABELS, label.key, label.model_dump_json())

    async def labels(self, detector: str | None = None) -> list[CandidateLabel]:
        """Every answer (for one detector), oldest first."""
        items = await self.state.items(LABELS)
        found = [_parse(CandidateLabel, key, raw) for key, raw in items.items()]
        kept = [f for f in found if f is not None and detector in (None, f.detector)]
        return sorted(kept, key=lambda f: (f.at, f.key))


def _parse(model: type[M], key: str, raw: str | None) -> M | None:
    if raw is None:
        return None
    try:
        return model.model_validate_json(raw)
    except ValidationError:
        logger.warning("unreadable %s record %s; ignoring it", model.__name__, key)
        return None


__all__ = [
    "AnnotationStore",
    "CandidateAnswer",
    "CandidateLabel",
    "LabelQueue",
    "QueueItem",
]
