"""``vqm label queue NAME --budget b``: choose what an operator labels next.

The pool is the detector's annotation candidates not yet answered; the strategy (the seed
rule by default, see :mod:`monitor.app.selection`) picks ``budget`` of them, and the queue,
most uncertain first, replaces the detector's previous one for the labelling page.
"""

from __future__ import annotations

import numpy as np

from alerting.annotation import LabelQueue, QueueItem
from monitor.app.selection import Strategy, select, uncertainty
from monitor.core.samples import SampleMeta, SampleStore


def pool(
    candidates: SampleStore, detector: str, answered: set[tuple[str, int]]
) -> list[SampleMeta]:
    """The detector's candidates with an embedding and a score, not yet answered."""
    return [
        m
        for m in candidates.all()
        if detector in m.detectors
        and m.embedding
        and m.score is not None
        and m.threshold is not None
        and m.key not in answered
    ]


def build_queue(
    metas: list[SampleMeta],
    detector: str,
    budget: int,
    strategy: Strategy,
    now: float,
    rng: np.random.Generator | None = None,
) -> LabelQueue:
    items: list[QueueItem] = []
    if metas:
        width = min(len(m.embedding or []) for m in metas)
        embeddings = np.array([(m.embedding or [])[:width] for m in metas])
        unsure = uncertainty(
            np.array([m.score for m in metas]), np.array([m.threshold for m in metas])
        )
        chosen = select(embeddings, unsure, budget, strategy, rng)
        for i in sorted(chosen.tolist(), key=lambda i: -unsure[i]):
            m = metas[i]
            assert m.score is not None and m.threshold is not None
            items.append(
                QueueItem(
                    channel_id=m.channel_id,
                    seq=m.seq,
                    frame_time=m.frame_time if m.frame_time is not None else m.media_start,
                    score=m.score,
                    threshold=m.threshold,
                    model_version=m.model_version,
                )
            )
    return LabelQueue(
        detector=detector,
        strategy=strategy,
        budget=budget,
        created_at=now,
        pool=len(metas),
        items=items,
    )
