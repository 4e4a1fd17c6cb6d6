"""Streams that carry CEA-608 captions the way broadcast H.264 does: ATSC A/53 user data.

Neither this machine's FFmpeg CLI nor PyAV can *write* caption user data from a caption
file, so captions are put into the bitstream directly: each access unit libx264 encodes (through
PyAV) gets one SEI message in front, ``user_data_registered_itu_t_t35`` with the ATSC ``GA94``
identifier and a ``cc_data`` structure carrying two CEA-608 bytes, and PyAV muxes it into
MPEG-TS. FFmpeg's decoder then exports the captions as ``A53_CC`` frame side data, which is
what the captions detector reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import av
import numpy as np

_START = b"\x00\x00\x00\x01"


def a53_sei(cc_pairs: Iterable[tuple[int, int]]) -> bytes:
    """One SEI NAL unit carrying ``cc_pairs`` (CEA-608 byte pairs, field 1)."""
    pairs = list(cc_pairs)
    cc = bytes([0x40 | len(pairs), 0xFF])  # process_cc_data_flag, cc_count; em_data
    for a, b in pairs:
        cc += bytes([0xFC, a, b])  # marker bits, cc_valid, cc_type 0 (NTSC field 1)
    payload = b"\xb5\x00\x31GA94\x03" + cc + b"\xff"
    sei = bytes([4, len(payload)]) + payload + b"\x80"  # payload type 4, size; rbsp stop
    return _START + b"\x06" + _escaped(sei)


def _escaped(rbsp: bytes) -> bytes:
    """Emulation prevention: no 00 00 0x inside a NAL unit."""
    out, zeros = bytearray(), 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def captioned_ts(path: Path, frames: np.ndarray, fps: int, captioned: Iterable[bool]) -> None:
    """MPEG-TS of ``frames`` (grey, (n, h, w)) where frame ``i``'s access unit carries a
    caption SEI when ``captioned[i]``: libx264 encodes, the SEI goes in front of each packet's
    NAL units (an H.264 access unit may start with any SEI), the muxer writes it as is."""
    marks = list(captioned)
    with av.open(str(path), "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.options = {"bf": "0"}  # packets in presentation order
        packets = []
        for gray in frames:
            rgb = np.stack([gray] * 3, axis=-1)
            packets += stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24"))
        packets += stream.encode(None)
        for i, packet in enumerate(packets):
            if i < len(marks) and marks[i]:
                packet = _with_sei(packet, a53_sei([(0x94, 0x2C), (0x80, 0x80)]))
            container.mux(packet)


def _with_sei(packet: av.Packet, sei: bytes) -> av.Packet:
    out = av.Packet(sei + bytes(packet))
    out.pts, out.dts, out.time_base = packet.pts, packet.dts, packet.time_base
    out.stream = packet.stream
    out.is_keyframe = packet.is_keyframe
    return out
