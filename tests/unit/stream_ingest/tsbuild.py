"""Transport streams built packet by packet, for the TS parser, segmenter and checks."""

from __future__ import annotations

import struct
from collections import defaultdict
from dataclasses import dataclass, field

from stream_ingest.ts import PACKET_SIZE, PTS_WRAP, crc32_mpeg

PMT_PID, VIDEO_PID, AUDIO_PID = 0x1000, 0x100, 0x101


def packet(
    pid: int,
    payload: bytes = b"",
    cc: int = 0,
    *,
    pusi: bool = False,
    random_access: bool = False,
    pcr: int | None = None,
    discontinuity: bool = False,
    scrambling: int = 0,
) -> bytes:
    """One 188-byte packet; the adaptation field carries the flags and the stuffing."""
    adaptation = b""
    flags = (0x80 if discontinuity else 0) | (0x40 if random_access else 0)
    if pcr is not None:
        flags |= 0x10
    room = PACKET_SIZE - 4 - len(payload)
    assert room >= 0, "payload too long for one packet"
    if flags or room:
        body = bytes([flags]) if room >= 2 or flags else b""
        if pcr is not None:
            base, ext = divmod(pcr, 300)
            body += struct.pack(">IH", base >> 1, ((base & 1) << 15) | 0x7E00 | ext)
        length = max(room - 1, len(body))
        adaptation = bytes([length]) + body + b"\xff" * (length - len(body))
    control = (0x2 if adaptation else 0) | (0x1 if payload else 0)
    header = struct.pack(
        ">BHB",
        0x47,
        (0x4000 if pusi else 0) | pid,
        (scrambling << 6) | (control << 4) | (cc & 0x0F),
    )
    raw = header + adaptation + payload
    assert len(raw) == PACKET_SIZE, len(raw)
    return raw


def _section(table_id: int, extension: int, version: int, body: bytes) -> bytes:
    length = 5 + len(body) + 4
    head = struct.pack(">BHHBBB", table_id, 0xB000 | length, extension, 0xC1 | version << 1, 0, 0)
    section = head + body
    return section + struct.pack(">I", crc32_mpeg(section))


def pat(version: int = 0, pmt_pid: int = PMT_PID) -> bytes:
    return _section(0x00, 1, version, struct.pack(">HH", 1, 0xE000 | pmt_pid))


def pmt(version: int = 0, streams: tuple[tuple[int, int], ...] | None = None) -> bytes:
    streams = ((0x1B, VIDEO_PID), (0x0F, AUDIO_PID)) if streams is None else streams
    body = struct.pack(">HH", 0xE000 | VIDEO_PID, 0xF000)
    for stream_type, pid in streams:
        body += struct.pack(">BHH", stream_type, 0xE000 | pid, 0xF000)
    return _section(0x02, 1, version, body)


def pes(pts: int, es: bytes, stream_id: int = 0xE0) -> bytes:
    """A PES header with a PTS, then ``es``."""
    pts %= PTS_WRAP
    stamp = bytes(
        [
            0x21 | ((pts >> 29) & 0x0E),
            (pts >> 22) & 0xFF,
            0x01 | ((pts >> 14) & 0xFE),
            (pts >> 7) & 0xFF,
            0x01 | ((pts << 1) & 0xFE),
        ]
    )
    return b"\x00\x00\x01" + bytes([stream_id]) + b"\x00\x00\x80\x80\x05" + stamp + es


IDR = b"\x00\x00\x00\x01\x09\xf0\x00\x00\x00\x01\x65\x88\x84"
NON_IDR = b"\x00\x00\x00\x01\x09\xf0\x00\x00\x00\x01\x41\x9a\x02"


@dataclass
class Builder:
    """A PAT/PMT every 0.1 s, a video frame (PES, 2 packets) at ``fps`` with the PCR, an
    IDR every ``gop`` frames (random access indicator set when ``rai``), an audio PES each
    frame; timestamps from ``start_pts``. ``skip`` drops streams from a time on."""

    fps: int = 25
    gop: int = 25
    start_pts: int = 900_000
    rai: bool = True
    cc: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    pat_version: int = 0
    pmt_version: int = 0

    def _next(self, pid: int) -> int:
        value = self.cc[pid]
        self.cc[pid] = (value + 1) & 0x0F
        return value

    def psi(self) -> list[bytes]:
        return [
            packet(0, b"\x00" + pat(self.pat_version), self._next(0), pusi=True),
            packet(PMT_PID, b"\x00" + pmt(self.pmt_version), self._next(PMT_PID), pusi=True),
        ]

    def frame(self, n: int, *, audio: bool = True, video: bool = True) -> list[bytes]:
        """The packets of frame ``n`` (PSI first on every 0.1 s boundary)."""
        step = 90_000 // self.fps
        pts = self.start_pts + n * step
        out: list[bytes] = []
        if n % max(1, self.fps // 10) == 0:
            out += self.psi()
        if video:
            key = n % self.gop == 0
            es = (IDR if key else NON_IDR) + b"\x00" * 100
            head = pes(pts, es)
            pcr = (pts - 9000) % PTS_WRAP * 300
            first, rest = head[:150], head[150:]
            out.append(
                packet(
                    VIDEO_PID,
                    first,
                    self._next(VIDEO_PID),
                    pusi=True,
                    random_access=key and self.rai,
                    pcr=pcr,
                )
            )
            out.append(packet(VIDEO_PID, rest + b"\x00" * (184 - len(rest)), self._next(VIDEO_PID)))
        if audio:
            out.append(
                packet(
                    AUDIO_PID,
                    pes(pts, b"\xff\xf1" + b"\x00" * 40, 0xC0),
                    self._next(AUDIO_PID),
                    pusi=True,
                )
            )
        return out

    def frames(self, start: int, stop: int, **kwargs: bool) -> list[bytes]:
        return [p for n in range(start, stop) for p in self.frame(n, **kwargs)]
