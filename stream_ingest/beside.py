"""Sound carried beside the pictures: a separate audio rendition that is not joined into the
video segment's MPEG-TS (either is fMP4) travels in the segment message as a container of its
own (``SegmentMessage.audio_payload``), which the inference decoder reads beside the video.

Ingest loads no media library, so it does not remux fMP4; it only picks the audio fragments
of the video segment's time and puts them after their init section::

    joined = carry_beside(payload, span, pieces)   # pieces: (data, init, start, end)
    joined.beside                                  # init + the fragments, one fMP4 file

The decoder reads the sound only over the pictures' span, so an audio fragment that
straddles a video segment's edge goes with both and is counted once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from stream_ingest.tsjoin import Joined

# A step between audio pieces larger than this (seconds) is a hole in the sound.
_HOLE = 0.05


class Piece(NamedTuple):
    """One audio segment: its bytes, its init section (b"" for MPEG-TS) and its span."""

    data: bytes
    init: bytes
    start: float
    end: float


def carry_beside(payload: bytes, video: tuple[float, float], pieces: Sequence[Piece]) -> Joined:
    """The video segment as it is, with the audio pieces of its time beside it (those of the
    first piece's init section: a rendition whose init changes is joined up to the change)."""
    first = pieces[0]
    kept = [p for p in pieces if p.init == first.init]
    audio = (max(video[0], kept[0].start), min(video[1], kept[-1].end))
    holes = sum(
        max(0.0, min(b.start, video[1]) - max(a.end, video[0]))
        for a, b in zip(kept, kept[1:], strict=False)
        if b.start - a.end > _HOLE
    )
    beside = first.init + b"".join(p.data for p in kept)
    covered = audio if audio[1] > audio[0] else None
    return Joined(payload=payload, video=video, audio=covered, holes=holes, beside=beside)
