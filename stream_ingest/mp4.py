"""The time an fMP4 (CMAF) segment covers, read from its boxes in plain Python.

Ingest carries a separate fMP4 audio rendition beside the video rather than remuxing it (the
decoder reads both, :mod:`stream_ingest.renditions`); to pick the audio fragments of a video
segment's time it needs only each fragment's span: the track's timescale (``moov/trak/mdia/
mdhd``), its kind (``hdlr``), the fragment's start (``moof/traf/tfdt``) and its samples'
durations (``trun``, else ``tfhd``'s or ``trex``'s default)::

    fragment_span(init + segment, "soun")     # (start, end) in seconds, or None
    fragment_span(payload, "vide")            # Mp4Error: boxes that do not read

Edit lists are not applied: a span can be off by the encoder delay (tens of milliseconds),
which the choice of fragments tolerates; the decoder times the samples exactly.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

_CONTAINERS = {b"moov", b"trak", b"mdia", b"mvex", b"moof", b"traf"}


class Mp4Error(ValueError):
    """Bytes that are not the ISO BMFF boxes they claim to be; the message says where."""


class Box(NamedTuple):
    """One box: its four-character type and where its body starts and the box ends."""

    kind: bytes
    body: int
    end: int


class Track(NamedTuple):
    handler: bytes  # b"vide", b"soun", ...
    timescale: int
    default_duration: int  # trex's default sample duration (0: none)


def boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[Box]:
    """The boxes between ``start`` and ``end``, in order."""
    end = len(data) if end is None else end
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, at)
        header = 8
        if size == 1:
            if at + 16 > end:
                raise Mp4Error(f"box {kind!r} at byte {at}: its 64-bit size is cut off")
            (size,) = struct.unpack_from(">Q", data, at + 8)
            header = 16
        elif size == 0:
            size = end - at  # to the end of its container
        if size < header or at + size > end:
            raise Mp4Error(f"box {kind!r} at byte {at}: size {size} does not fit its container")
        yield Box(kind, at + header, at + size)
        at += size


def _find(data: bytes, box: Box, path: list[bytes]) -> Iterator[Box]:
    """The boxes at ``path`` under ``box`` (every match at every level)."""
    for child in boxes(data, box.body, box.end):
        if child.kind == path[0]:
            if len(path) == 1:
                yield child
            elif child.kind in _CONTAINERS:
                yield from _find(data, child, path[1:])


def _version(data: bytes, box: Box) -> int:
    """A full box's version byte."""
    if box.body >= box.end:
        raise Mp4Error(f"box {box.kind!r} at byte {box.body}: empty")
    return data[box.body]


def _u32(data: bytes, at: int, box: Box) -> int:
    if at + 4 > box.end:
        raise Mp4Error(f"box {box.kind!r} at byte {box.body}: too short")
    return int(struct.unpack_from(">I", data, at)[0])


def _u64(data: bytes, at: int, box: Box) -> int:
    if at + 8 > box.end:
        raise Mp4Error(f"box {box.kind!r} at byte {box.body}: too short")
    return int(struct.unpack_from(">Q", data, at)[0])


def tracks(data: bytes) -> dict[int, Track]:
    """The tracks the ``moov`` box of ``data`` declares, by track ID."""
    whole = Box(b"", 0, len(data))
    defaults = {
        _u32(data, t.body + 4, t): _u32(data, t.body + 12, t)
        for t in _find(data, whole, [b"moov", b"mvex", b"trex"])
    }
    found = {}
    for trak in _find(data, whole, [b"moov", b"trak"]):
        tkhd = next(_find(data, trak, [b"tkhd"]), None)
        mdhd = next(_find(data, trak, [b"mdia", b"mdhd"]), None)
        hdlr = next(_find(data, trak, [b"mdia", b"hdlr"]), None)
        if tkhd is None or mdhd is None or hdlr is None:
            raise Mp4Error("a track without tkhd, mdhd or hdlr")
        wide = _version(data, tkhd) == 1  # version 1: 64-bit times before ID / timescale
        track_id = _u32(data, tkhd.body + (20 if wide else 12), tkhd)
        wide = _version(data, mdhd) == 1
        timescale = _u32(data, mdhd.body + (20 if wide else 12), mdhd)
        if timescale == 0:
            raise Mp4Error(f"track {track_id}: timescale 0")
        handler = data[hdlr.body + 8 : hdlr.body + 12]
        found[track_id] = Track(handler, timescale, defaults.get(track_id, 0))
    return found


def fragment_span(data: bytes, handler: bytes) -> tuple[float, float] | None:
    """First sample to the end of the last, seconds, of the first ``handler`` track (b"vide",
    b"soun") over the fragments in ``data`` (which holds the init section too); None when no
    fragment has samples of it."""
    known = {tid: t for tid, t in tracks(data).items() if t.handler == handler}
    if not known:
        return None
    track_id = min(known)
    track = known[track_id]
    starts, ends = [], []
    for traf in _find(data, Box(b"", 0, len(data)), [b"moof", b"traf"]):
        tfhd = next(_find(data, traf, [b"tfhd"]), None)
        if tfhd is None or _u32(data, tfhd.body + 4, tfhd) != track_id:
            continue
        tfdt = next(_find(data, traf, [b"tfdt"]), None)
        if tfdt is None:
            raise Mp4Error(f"track {track_id}: a fragment without tfdt")
        wide = _version(data, tfdt) == 1
        start = _u64(data, tfdt.body + 4, tfdt) if wide else _u32(data, tfdt.body + 4, tfdt)
        default = _tfhd_duration(data, tfhd) or track.default_duration
        length = sum(_trun_durations(data, t, default) for t in _find(data, traf, [b"trun"]))
        if length:
            starts.append(start)
            ends.append(start + length)
    if not starts:
        return None
    return min(starts) / track.timescale, max(ends) / track.timescale


def _tfhd_duration(data: bytes, tfhd: Box) -> int:
    flags = _u32(data, tfhd.body, tfhd) & 0xFFFFFF
    if not flags & 0x08:
        return 0
    at = tfhd.body + 8 + (8 if flags & 0x01 else 0) + (4 if flags & 0x02 else 0)
    return _u32(data, at, tfhd)


def _trun_durations(data: bytes, trun: Box, default: int) -> int:
    """The summed sample durations of one ``trun``."""
    flags = _u32(data, trun.body, trun) & 0xFFFFFF
    count = _u32(data, trun.body + 4, trun)
    at = trun.body + 8 + (4 if flags & 0x01 else 0) + (4 if flags & 0x04 else 0)
    if not flags & 0x100:
        if default == 0:
            raise Mp4Error("samples without durations (none in trun, tfhd or trex)")
        return count * default
    stride = 4 * bin(flags & 0xF00).count("1")
    if at + count * stride > trun.end:
        raise Mp4Error(f"trun at byte {trun.body}: {count} samples do not fit it")
    return sum(_u32(data, at + i * stride, trun) for i in range(count))
