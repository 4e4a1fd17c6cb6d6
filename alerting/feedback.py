"""Operator feedback on alerts: real defect or false alarm, and where in the picture.

An operator answers for one alert (API ``POST /api/alerts/{id}/feedback``, or the status
wall): a :class:`FeedbackRequest` with the verdict, who, and for block corruption the regions
marked on a ``grid`` x ``grid`` patch grid over the alert's picture (or the whole frame). The
stored :class:`Feedback` carries what the alert was (channel, detector, media time span), so
the label still makes a dataset after the alert has left the history; a later answer for the
same alert replaces the earlier one. The store is any :class:`~monitor.core.state.StateStore`:
Redis in the distributed mode, a local file in the one-process mode, so labels survive a
restart either way.

    store = FeedbackStore(state)
    await store.put(Feedback.of(alert, FeedbackRequest(verdict="false_alarm", by="ana"), at))
    [f.verdict for f in await store.all()]
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from alerting.models import Alert
from monitor.core.state import StateStore

logger = logging.getLogger(__name__)

FEEDBACK = "feedback"
REGION_DETECTORS = frozenset({"block_corruption"})  # detectors whose alerts take region marks
GRID_SIZES = (16, 32)


class Verdict(StrEnum):
    REAL_DEFECT = "real_defect"
    FALSE_ALARM = "false_alarm"


class Regions(BaseModel):
    """Where the defect is (or, for a false alarm, what fooled the detector): cells of a
    ``grid`` x ``grid`` patch grid over the picture, ``[row, column]`` from the top left, or
    the whole frame."""

    model_config = ConfigDict(extra="forbid")

    grid: Literal[16, 32] = Field(default=16, description="Patches per side of the grid.")
    cells: list[tuple[int, int]] = Field(
        default_factory=list, max_length=32 * 32, description="[row, column] of marked patches."
    )
    whole_frame: bool = Field(default=False, description="The whole picture, instead of cells.")

    @model_validator(mode="after")
    def _cells_fit(self) -> Regions:
        if self.whole_frame == bool(self.cells):
            raise ValueError("give either cells or whole_frame: true (one of them)")
        for row, col in self.cells:
            if not (0 <= row < self.grid and 0 <= col < self.grid):
                raise ValueError(
                    f"cell [{row}, {col}] is outside the {self.grid}x{self.grid} grid "
                    f"(rows and columns 0..{self.grid - 1})"
                )
        if len(set(self.cells)) != len(self.cells):
            raise ValueError("a cell is marked twice")
        return self


class FeedbackRequest(BaseModel):
    """Body of ``POST /api/alerts/{id}/feedback``."""

    model_config = ConfigDict(extra="forbid")

    verdict: Verdict
    by: str = Field(min_length=1, max_length=200, description="Who answers.")
    comment: str = Field(default="", max_length=2000)
    regions: Regions | None = Field(
        default=None, description="Block corruption only: the patches marked."
    )


class Feedback(BaseModel):
    """One operator's answer for one alert, as stored and exported."""

    model_config = ConfigDict(extra="forbid")

    alert_id: str
    channel_id: str
    detector: str
    label: str | None = None
    start: float = Field(description="The alert's media start (stream PTS seconds).")
    end: float = Field(description="The alert's media end.")
    verdict: Verdict
    by: str
    at: float = Field(description="When the answer was given, epoch seconds.")
    comment: str = ""
    regions: Regions | None = None

    @classmethod
    def of(cls, alert: Alert, request: FeedbackRequest, at: float) -> Feedback:
        return cls(
            alert_id=alert.id,
            channel_id=alert.channel_id,
            detector=alert.detector,
            label=alert.label,
            start=alert.start,
            end=alert.end,
            at=at,
            **request.model_dump(),
        )


class FeedbackStore:
    """Feedback records by alert id in one namespace of a :class:`StateStore`; kept until
    deleted (they are training data, not state that ages)."""

    def __init__(self, state: StateStore) -> None:
        self.state = state

    async def put(self, feedback: Feedback) -> None:
        await self.state.set(FEEDBACK, feedback.alert_id, feedback.model_dump_json())

    async def get(self, alert_id: str) -> Feedback | None:
        return self._parse(alert_id, await self.state.get(FEEDBACK, alert_id))

    async def all(self) -> list[Feedback]:
        """Every answer, oldest first."""
        items = await self.state.items(FEEDBACK)
        found = [self._parse(key, raw) for key, raw in items.items()]
        return sorted((f for f in found if f is not None), key=lambda f: (f.at, f.alert_id))

    @staticmethod
    def _parse(key: str, raw: str | None) -> Feedback | None:
        if raw is None:
            return None
        try:
            return Feedback.model_validate_json(raw)
        except ValidationError:
            logger.warning("unreadable feedback record %s; ignoring it", key)
            return None
