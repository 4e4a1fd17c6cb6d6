"""The labelling queue: the candidates ``vqm label queue`` chose for a detector and their
pictures (read), and an operator's answer for each (write). See :mod:`alerting.annotation`
for what is stored.

A candidate is named by the URL (channel id and seq); it is looked up in the detector's
current queue before anything is read from disk, so a URL can only reach a picture the queue
names.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from starlette.exceptions import HTTPException

from alerting.annotation import (
    AnnotationStore,
    CandidateAnswer,
    CandidateLabel,
    LabelQueue,
    QueueItem,
)
from alerting.api.deps import Ctx
from alerting.api.errors import documented
from alerting.api.routes.feedback import refuse_foreign_regions
from alerting.api.schemas import LabelList, QueueView
from monitor.core.redact import log_safe

logger = logging.getLogger(__name__)

read_router = APIRouter(tags=["labels"])
write_router = APIRouter(tags=["labels"])

ITEM = "/api/labels/{detector}/items/{channel_id}/{seq}"
Detector = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
ChannelId = Annotated[str, Path(min_length=1, max_length=200)]
Seq = Annotated[int, Path(ge=0)]


def get_annotations(ctx: Ctx) -> AnnotationStore:
    return AnnotationStore(ctx.feedback_state)


Annotations = Annotated[AnnotationStore, Depends(get_annotations)]


async def _queue(annotations: AnnotationStore, detector: str) -> LabelQueue:
    queue = await annotations.queue(detector)
    if queue is None:
        raise HTTPException(
            404,
            f"no labelling queue for {detector!r}: make one with "
            f"'vqm label queue {detector} --budget N'",
        )
    return queue


async def _item(
    annotations: AnnotationStore, detector: str, channel_id: str, seq: int
) -> QueueItem:
    queue = await _queue(annotations, detector)
    for item in queue.items:
        if (item.channel_id, item.seq) == (channel_id, seq):
            return item
    raise HTTPException(
        404, f"candidate {channel_id!r} seq {seq} is not in the current {detector} queue"
    )


@read_router.get(
    "/api/labels/{detector}/queue", response_model=QueueView, responses=documented(404, 422)
)
async def get_queue(detector: Detector, annotations: Annotations) -> QueueView:
    """The detector's labelling queue, each item with its answer if one was given."""
    queue = await _queue(annotations, detector)
    return QueueView.of(queue, await annotations.labels(detector))


@read_router.get(
    ITEM + "/picture",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, **documented(404, 422)},
)
async def candidate_picture(
    detector: Detector, channel_id: ChannelId, seq: Seq, ctx: Ctx, annotations: Annotations
) -> Response:
    """The frame the detector judged, as it was analysed (PNG)."""
    await _item(annotations, detector, channel_id, seq)
    if ctx.candidates is None:
        raise HTTPException(
            404,
            "the annotation candidates are not available in this process: the API needs the "
            "inference workers' candidates directory in its data directory",
        )
    found = await asyncio.to_thread(ctx.candidates.read, channel_id, seq)
    if found is None:
        raise HTTPException(
            404, f"candidate {channel_id!r} seq {seq} is no longer kept (evicted from the store)"
        )
    meta, png = found
    if meta.container != "png":
        raise HTTPException(404, f"candidate {channel_id!r} seq {seq} is not a picture")
    # Not cached: a channel whose sequence numbers restart keeps a new frame under the same URL.
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@write_router.post(
    ITEM,
    response_model=CandidateLabel,
    status_code=201,
    responses=documented(400, 401, 403, 404, 413, 422),
)
async def answer_candidate(
    detector: Detector,
    channel_id: ChannelId,
    seq: Seq,
    answer: CandidateAnswer,
    ctx: Ctx,
    annotations: Annotations,
) -> CandidateLabel:
    """Say whether a queued candidate shows a defect (and, for block corruption, where); a
    later answer for the same candidate replaces this one."""
    item = await _item(annotations, detector, channel_id, seq)
    refuse_foreign_regions(detector, answer.regions, "candidates")
    label = CandidateLabel.of(detector, item, answer, ctx.clock())
    await annotations.put_label(label)
    logger.info(
        "candidate %s marked %s by %s", log_safe(label.key), label.verdict, log_safe(label.by)
    )
    return label


@read_router.get("/api/labels/{detector}/answers", response_model=LabelList)
async def list_answers(detector: Detector, annotations: Annotations) -> LabelList:
    """Every answer given for the detector's candidates, oldest first."""
    return LabelList(labels=await annotations.labels(detector))
