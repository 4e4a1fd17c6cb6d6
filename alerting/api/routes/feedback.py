"""Operator feedback: answering an alert (write), reading the answers and an alert's picture
(read). See :mod:`alerting.feedback` for what is stored."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from starlette.exceptions import HTTPException

from alerting.api.deps import Ctx, Store
from alerting.api.errors import documented
from alerting.api.routes.channels import jpeg_response
from alerting.api.schemas import FeedbackList
from alerting.feedback import (
    REGION_DETECTORS,
    Feedback,
    FeedbackRequest,
    FeedbackStore,
    Regions,
)
from alerting.models import Alert
from alerting.store import AlertStore
from monitor.core.redact import log_safe

logger = logging.getLogger(__name__)

read_router = APIRouter(tags=["feedback"])
write_router = APIRouter(tags=["feedback"])


def get_feedback_store(ctx: Ctx) -> FeedbackStore:
    return FeedbackStore(ctx.feedback_state)


Answers = Annotated[FeedbackStore, Depends(get_feedback_store)]


async def _alert(store: AlertStore, alert_id: str) -> Alert:
    alert = await store.find(alert_id)
    if alert is None:
        raise HTTPException(404, f"no alert {alert_id!r} (open or in the recent history)")
    return alert


def refuse_foreign_regions(detector: str, regions: Regions | None, what: str) -> None:
    """A 422 for regions marked on the picture of a detector that takes none (``what`` names
    what was answered: "alerts", "candidates")."""
    if regions is not None and detector not in REGION_DETECTORS:
        allowed = ", ".join(sorted(REGION_DETECTORS))
        raise HTTPException(
            422, f"regions: only {what} of {allowed} take regions, this is {detector}"
        )


@write_router.post(
    "/api/alerts/{alert_id}/feedback",
    response_model=Feedback,
    status_code=201,
    responses=documented(400, 401, 403, 404, 413, 422),
)
async def give_feedback(
    alert_id: str, request: FeedbackRequest, ctx: Ctx, store: Store, answers: Answers
) -> Feedback:
    """Say whether an alert was a real defect or a false alarm (and, for block corruption,
    where); a later answer for the same alert replaces this one."""
    alert = await _alert(store, alert_id)
    refuse_foreign_regions(alert.detector, request.regions, "alerts")
    feedback = Feedback.of(alert, request, ctx.clock())
    await answers.put(feedback)
    logger.info(
        "alert %s marked %s by %s", log_safe(alert_id), feedback.verdict, log_safe(feedback.by)
    )
    return feedback


@read_router.get(
    "/api/alerts/{alert_id}/feedback", response_model=Feedback, responses=documented(404)
)
async def get_feedback(alert_id: str, answers: Answers) -> Feedback:
    """The answer given for an alert; 404 when none was."""
    feedback = await answers.get(alert_id)
    if feedback is None:
        raise HTTPException(404, f"no feedback for alert {alert_id!r}")
    return feedback


@read_router.get("/api/feedback", response_model=FeedbackList)
async def list_feedback(answers: Answers) -> FeedbackList:
    """Every answer given, oldest first."""
    return FeedbackList(feedback=await answers.all())


@read_router.get(
    "/api/alerts/{alert_id}/picture.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, **documented(404)},
)
async def alert_picture(alert_id: str, store: Store) -> Response:
    """The channel's picture when the alert opened: what regions are marked over."""
    picture = await store.get_picture(alert_id)
    if picture is None:
        raise HTTPException(404, f"no picture was kept for alert {alert_id!r}")
    return jpeg_response(picture, f"picture of alert {alert_id!r}")
