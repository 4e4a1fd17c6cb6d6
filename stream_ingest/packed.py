"""Packed audio segments (HLS's ``.aac``, ``.ac3``, ``.ec3``, ``.mp3``: the raw audio after
an ID3 timestamp) as MPEG-TS.

RFC 8216 3.4: a packed audio segment is the raw elementary stream with an ID3 tag first
whose PRIV frame ``com.apple.streaming.transportStreamTimestamp`` gives the 33-bit PTS of its
first sample. Ingest loads no media library, so the segment is rewrapped here as one
MPEG-TS program (each frame a PES with its own PTS; stream type 0x0F for AAC in ADTS, 0x81
AC-3, 0x87 E-AC-3, 0x03/0x04 MPEG audio) and then joined to the video like an MPEG-TS
rendition (:mod:`stream_ingest.tsjoin`)::

    ts = packed_to_ts(aac_bytes)     # PackedError: why the segment cannot be read

Frame times come from each frame header's sample rate and sample count
(:mod:`stream_ingest.esframes`), counted from the ID3 timestamp. A segment that does not
read whole (no or a bad ID3 tag, no timestamp, lost sync, a frame cut short) is refused with
the reason, not half-used.
"""

from __future__ import annotations

from stream_ingest.esframes import FrameError, codec_at, split_frames
from stream_ingest.ts import PAT_PID, PTS_HZ, PTS_WRAP
from stream_ingest.tsmux import EsEntry, pat, pes_packets, pmt, psi_packet

TIMESTAMP_OWNER = b"com.apple.streaming.transportStreamTimestamp"
AUDIO_PID = 0x0100
PMT_PID = 0x1000
_PROGRAM = 1
_ID3_HEADER = 10


class PackedError(ValueError):
    """A packed audio segment that cannot be read; the message says where and why."""


def as_transport_stream(data: bytes) -> bytes:
    """An audio segment as MPEG-TS: packed audio (it starts with an ID3 tag) rewrapped, other
    bytes as they are (MPEG-TS, or what the join then refuses)."""
    return packed_to_ts(data) if data.startswith(b"ID3") else data


def packed_to_ts(data: bytes) -> bytes:
    """The packed segment as MPEG-TS: PAT, PMT, then one PES per frame."""
    pts, offset = id3_timestamp(data)
    if offset == len(data):
        raise PackedError("no audio after the ID3 tag")
    try:
        codec = codec_at(data, offset)
        frames = split_frames(data, offset, codec)
    except FrameError as exc:
        raise PackedError(str(exc)) from None
    counters: dict[int, int] = {}
    out = bytearray(psi_packet(PAT_PID, pat(_PROGRAM, PMT_PID), counters))
    streams = [EsEntry(codec.stream_type, AUDIO_PID)]
    out += psi_packet(PMT_PID, pmt(_PROGRAM, AUDIO_PID, streams), counters)
    samples = 0  # since the timestamp, at the frames' rate
    for frame in frames:
        at = (pts + samples * PTS_HZ // frame.sample_rate) % PTS_WRAP
        out += pes_packets(AUDIO_PID, codec.stream_id, at, frame.data, counters)
        samples += frame.samples
    return bytes(out)


def id3_timestamp(data: bytes) -> tuple[int, int]:
    """The PTS (90 kHz) of the ID3 tags' timestamp frame, and where the audio after the tags
    begins."""
    offset, pts = 0, None
    while data[offset : offset + 3] == b"ID3":
        end, found = _id3_tag(data, offset)
        pts = found if found is not None else pts
        offset = end
    if offset == 0:
        raise PackedError("no ID3 tag at the start (a packed audio segment begins with one)")
    if pts is None:
        raise PackedError(f"no ID3 PRIV frame {TIMESTAMP_OWNER.decode()} in the ID3 tag")
    return pts, offset


def _id3_tag(data: bytes, start: int) -> tuple[int, int | None]:
    """The end of one ID3v2 tag and the timestamp it carries, if any."""
    header = data[start : start + _ID3_HEADER]
    if len(header) < _ID3_HEADER or header[3] not in (3, 4):
        raise PackedError(f"ID3 tag at byte {start}: not ID3v2.3 or v2.4")
    version, flags = header[3], header[5]
    size = _syncsafe(header[6:10], f"ID3 tag at byte {start}")
    end = start + _ID3_HEADER + size + (10 if flags & 0x10 else 0)  # footer present
    if end > len(data):
        raise PackedError(f"ID3 tag at byte {start}: {size} bytes said, the segment is shorter")
    i = start + _ID3_HEADER
    if flags & 0x40:  # an extended header: skipped
        ext = data[i : i + 4]
        i += _syncsafe(ext, "ID3 extended header") if version == 4 else 4 + int.from_bytes(ext)
    pts = None
    while i + 10 <= start + _ID3_HEADER + size and data[i] != 0:  # zeros: padding
        name, raw = data[i : i + 4], data[i + 4 : i + 8]
        length = _syncsafe(raw, f"ID3 frame {name!r}") if version == 4 else int.from_bytes(raw)
        body = data[i + 10 : i + 10 + length]
        if len(body) < length:
            raise PackedError(f"ID3 frame {name!r} at byte {i} runs past its tag")
        if name == b"PRIV" and body.startswith(TIMESTAMP_OWNER + b"\x00"):
            pts = _timestamp(body[len(TIMESTAMP_OWNER) + 1 :])
        i += 10 + length
    return end, pts


def _syncsafe(raw: bytes, what: str) -> int:
    if len(raw) < 4 or any(b & 0x80 for b in raw):
        raise PackedError(f"{what}: size is not a syncsafe integer")
    return raw[0] << 21 | raw[1] << 14 | raw[2] << 7 | raw[3]


def _timestamp(raw: bytes) -> int:
    if len(raw) != 8:
        raise PackedError(f"ID3 timestamp is {len(raw)} bytes, not 8")
    value = int.from_bytes(raw)
    if value >> 33:
        raise PackedError(f"ID3 timestamp {value:#x} is wider than 33 bits")
    return value
