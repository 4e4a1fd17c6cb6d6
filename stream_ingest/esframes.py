"""Audio elementary streams cut into frames by their headers: AAC in ADTS, AC-3, E-AC-3 and
MPEG audio (MP3, MP2), as packed audio segments carry them (:mod:`stream_ingest.packed`).

Each frame's header gives its length and how many samples it holds at which rate, which is
all a rewrap into PES needs::

    codec = codec_at(data, offset)            # FrameError: no frame this module knows
    frames = split_frames(data, offset, codec)
    codec.stream_type, frames[0].samples      # 0x0F, 1024

Every byte must belong to a frame: a stream that loses sync or ends mid-frame is refused
with where and why, not half-read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple


class FrameError(ValueError):
    """Bytes that are not whole frames of the stream they start as; the message says where."""


class Frame(NamedTuple):
    """One frame, header included, and its length in samples at its sample rate (0 samples:
    an E-AC-3 dependent substream, which goes with the frame before)."""

    data: bytes
    sample_rate: int
    samples: int


class Codec(NamedTuple):
    name: str
    stream_type: int  # in a PMT
    stream_id: int  # in a PES header
    read: Callable[[bytes, int], Frame]


# ISO/IEC 14496-3 sampling_frequency_index; AC-3 fscod; AC-3 frmsizecod // 2 in kbit/s.
_ADTS_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025,
               8000, 7350)  # fmt: skip
_AC3_RATES = (48000, 44100, 32000)
_AC3_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512,
             576, 640)  # fmt: skip
_EAC3_BLOCKS = (1, 2, 3, 6)
# MPEG audio bitrates (kbit/s) by (MPEG-1?, layer), index 1..14.
_MPA_KBPS = {
    (True, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPA_KBPS[(False, 3)] = _MPA_KBPS[(False, 2)]
_MPA_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _header(data: bytes, at: int, size: int, name: str) -> bytes:
    head = data[at : at + size]
    if len(head) < size:
        raise FrameError(f"{name} frame at byte {at} is cut short ({len(head)} header bytes)")
    return head


def _whole(data: bytes, at: int, length: int, name: str) -> bytes:
    if at + length > len(data):
        raise FrameError(
            f"{name} frame at byte {at} is cut short ({len(data) - at} of {length} bytes)"
        )
    return data[at : at + length]


def _adts(data: bytes, at: int) -> Frame:
    head = _header(data, at, 7, "ADTS")
    rate_index = (head[2] >> 2) & 0x0F
    if rate_index >= len(_ADTS_RATES):
        raise FrameError(f"ADTS frame at byte {at}: reserved sample rate index {rate_index}")
    length = (head[3] & 0x03) << 11 | head[4] << 3 | head[5] >> 5
    if length < (7 if head[1] & 0x01 else 9):  # protection_absent, else a CRC follows
        raise FrameError(f"ADTS frame at byte {at}: length {length} is shorter than its header")
    blocks = (head[6] & 0x03) + 1
    return Frame(_whole(data, at, length, "ADTS"), _ADTS_RATES[rate_index], blocks * 1024)


def _ac3(data: bytes, at: int) -> Frame:
    head = _header(data, at, 6, "AC-3")
    fscod, frmsizecod = head[4] >> 6, head[4] & 0x3F
    if fscod == 3 or frmsizecod >= 2 * len(_AC3_KBPS):
        raise FrameError(f"AC-3 frame at byte {at}: reserved rate or frame size code")
    kbps, rate = _AC3_KBPS[frmsizecod // 2], _AC3_RATES[fscod]
    words = kbps * 96_000 // rate + (frmsizecod & 1 if fscod == 1 else 0)  # 16-bit words
    return Frame(_whole(data, at, 2 * words, "AC-3"), rate, 1536)


def _eac3(data: bytes, at: int) -> Frame:
    head = _header(data, at, 6, "E-AC-3")
    dependent = head[2] >> 6 == 1
    length = 2 * ((((head[2] & 0x07) << 8) | head[3]) + 1)
    fscod, numblkscod = head[4] >> 6, (head[4] >> 4) & 0x03
    if fscod == 3:
        if numblkscod == 3:
            raise FrameError(f"E-AC-3 frame at byte {at}: reserved sample rate code")
        rate, blocks = _AC3_RATES[numblkscod] // 2, 6
    else:
        rate, blocks = _AC3_RATES[fscod], _EAC3_BLOCKS[numblkscod]
    return Frame(_whole(data, at, length, "E-AC-3"), rate, 0 if dependent else 256 * blocks)


def _mpeg_audio(data: bytes, at: int) -> Frame:
    head = _header(data, at, 4, "MPEG audio")
    version, layer = (head[1] >> 3) & 0x03, 4 - ((head[1] >> 1) & 0x03)
    index, rate_index, padding = head[2] >> 4, (head[2] >> 2) & 0x03, (head[2] >> 1) & 1
    if version == 1 or layer == 4 or index in (0, 15) or rate_index == 3:
        raise FrameError(f"MPEG audio frame at byte {at}: reserved or free-format header")
    mpeg1 = version == 3
    bits = _MPA_KBPS[(mpeg1, layer)][index - 1] * 1000
    rate = _MPA_RATES[version][rate_index]
    if layer == 1:
        length, samples = (12 * bits // rate + padding) * 4, 384
    else:
        samples = 1152 if mpeg1 or layer == 2 else 576
        length = samples // 8 * bits // rate + padding
    return Frame(_whole(data, at, length, "MPEG audio"), rate, samples)


ADTS = Codec("AAC (ADTS)", 0x0F, 0xC0, _adts)
AC3 = Codec("AC-3", 0x81, 0xBD, _ac3)
EAC3 = Codec("E-AC-3", 0x87, 0xBD, _eac3)
MPEG1_AUDIO = Codec("MPEG-1 audio", 0x03, 0xC0, _mpeg_audio)
MPEG2_AUDIO = Codec("MPEG-2 audio", 0x04, 0xC0, _mpeg_audio)


def codec_at(data: bytes, at: int) -> Codec:
    """The codec whose sync word starts at ``at``."""
    head = data[at : at + 6]
    if head[:2] == b"\x0b\x77" and len(head) == 6:
        return AC3 if head[5] >> 3 <= 10 else EAC3  # bsid: 16 for E-AC-3
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        if head[1] & 0x06 == 0:
            return ADTS
        return MPEG1_AUDIO if (head[1] >> 3) & 0x03 == 3 else MPEG2_AUDIO
    raise FrameError(
        f"no audio frame sync word at byte {at} (not ADTS, AC-3, E-AC-3 or MPEG audio)"
    )


def split_frames(data: bytes, at: int, codec: Codec) -> list[Frame]:
    """The frames of ``codec`` from ``at`` to the end (an E-AC-3 dependent substream joined
    to the frame before it: both are one moment's sound)."""
    frames: list[Frame] = []
    while at < len(data):
        if codec_at(data, at).stream_type != codec.stream_type:
            raise FrameError(f"the stream changes from {codec.name} at byte {at}")
        frame = codec.read(data, at)
        if frame.samples == 0 and frames:
            last = frames[-1]
            frames[-1] = Frame(last.data + frame.data, last.sample_rate, last.samples)
        else:
            frames.append(frame)
        at += len(frame.data)
    if not frames:
        raise FrameError(f"no {codec.name} frame")
    return frames
