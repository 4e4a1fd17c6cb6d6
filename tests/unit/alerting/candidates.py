"""What labelling-queue tests share: annotation candidates kept as PNG in a real sample store,
and the queue that names them, stored as ``vqm label queue`` stores it."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from alerting.annotation import AnnotationStore, LabelQueue, QueueItem
from monitor.core.samples import SampleMeta, SampleStore
from monitor.core.state import StateStore

DETECTOR = "block_corruption"
CREATED_AT = 1_714_564_800.0


def png(width: int, height: int, grey: int) -> bytes:
    """A flat grey 8-bit greyscale PNG, written by hand (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\0" + bytes([grey]) * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def keep_candidate(store: SampleStore, channel_id: str, seq: int, score: float) -> bytes:
    """Keep one analysed frame as inference does; returns its PNG bytes."""
    picture = png(64, 36, 40 + seq)
    meta = SampleMeta(
        channel_id=channel_id,
        seq=seq,
        media_start=seq * 2.0,
        media_end=seq * 2.0 + 2.0,
        detectors=[DETECTOR],
        container="png",
        frame_time=seq * 2.0 + 0.5,
        score=score,
        threshold=0.5,
        embedding=[0.1, 0.2],
        region_prob=[[0.0] * 16 for _ in range(16)],
    )
    store.put(meta, picture)
    return picture


ITEM_FIELDS = {"channel_id", "seq", "frame_time", "score", "threshold", "model_version"}


def item_of(meta: SampleMeta) -> QueueItem:
    """The queue item a candidate makes (what ``vqm label queue`` copies from its meta)."""
    return QueueItem.model_validate(meta.model_dump(include=ITEM_FIELDS))


async def queue_everything(
    state: StateStore, store: SampleStore, detector: str = DETECTOR
) -> LabelQueue:
    """Store a queue of every candidate kept, in the store's order."""
    metas = store.all()
    queue = LabelQueue(
        detector=detector,
        strategy="seed",
        budget=len(metas),
        created_at=CREATED_AT,
        pool=len(metas),
        items=[item_of(meta) for meta in metas],
    )
    await AnnotationStore(state).put_queue(queue)
    return queue


def two_candidates(root: Path) -> tuple[SampleStore, dict[tuple[str, int], bytes]]:
    """A real candidates store holding two frames of channel ``news``, and their bytes."""
    store = SampleStore(root)
    pictures = {("news", seq): keep_candidate(store, "news", seq, score) for seq, score in
                ((3, 0.62), (8, 0.41))}  # fmt: skip
    return store, pictures
