"""Writing MPEG-TS in plain Python: PSI sections, PAT and PMT packets, and PES packetized.

Ingest makes transport streams in two places: the alternate audio join writes one new PAT and
PMT over a video segment (:mod:`stream_ingest.tsjoin`), and packed audio is wrapped as PES
before it is joined (:mod:`stream_ingest.packed`)::

    counters: dict[int, int] = {}                      # continuity counter per PID
    out = psi_packet(PAT_PID, pat(1, 0x1000), counters)
    out += psi_packet(0x1000, pmt(1, 0x100, [EsEntry(0x0F, 0x100)]), counters)
    out += pes_packets(0x100, 0xC0, pts, frame, counters)
"""

from __future__ import annotations

from dataclasses import dataclass

from stream_ingest.ts import PACKET_SIZE, PTS_WRAP, SYNC_BYTE, crc32_mpeg


class MuxError(ValueError):
    """Something that does not fit the transport stream being written."""


@dataclass(frozen=True)
class EsEntry:
    """One elementary stream of a PMT, with its descriptors kept as they were."""

    stream_type: int
    pid: int
    info: bytes = b""


def section(table_id: int, ident: int, body: bytes) -> bytes:
    """A long-form PSI section (version 0, current, one section) with its CRC."""
    length = 5 + len(body) + 4
    head = bytes(
        [table_id, 0xB0 | (length >> 8), length & 0xFF, ident >> 8, ident & 0xFF, 0xC1, 0, 0]
    )
    whole = head + body
    return whole + crc32_mpeg(whole).to_bytes(4, "big")


def pat(program: int, pmt_pid: int) -> bytes:
    """A PAT section naming one program."""
    return section(
        0x00, 1, bytes([program >> 8, program & 0xFF, 0xE0 | pmt_pid >> 8, pmt_pid & 0xFF])
    )


def pmt(program: int, pcr_pid: int, streams: list[EsEntry]) -> bytes:
    """A PMT section announcing ``streams``."""
    body = bytearray([0xE0 | pcr_pid >> 8, pcr_pid & 0xFF, 0xF0, 0])
    for s in streams:
        body += bytes([s.stream_type, 0xE0 | s.pid >> 8, s.pid & 0xFF])
        body += bytes([0xF0 | len(s.info) >> 8, len(s.info) & 0xFF]) + s.info
    return section(0x02, program, bytes(body))


def _next_cc(pid: int, counters: dict[int, int]) -> int:
    cc = counters.get(pid, -1) + 1 & 0x0F
    counters[pid] = cc
    return cc


def psi_packet(pid: int, psi: bytes, counters: dict[int, int]) -> bytes:
    """One section in one packet (pointer field 0, stuffed with 0xFF)."""
    if len(psi) > PACKET_SIZE - 5:
        raise MuxError(f"a PSI section of {len(psi)} bytes does not fit one packet")
    cc = _next_cc(pid, counters)
    header = bytes([SYNC_BYTE, 0x40 | pid >> 8, pid & 0xFF, 0x10 | cc, 0])
    return (header + psi).ljust(PACKET_SIZE, b"\xff")


def _pts_field(pts: int) -> bytes:
    """The five bytes of a PES header's PTS ('0010' prefix: PTS only)."""
    pts %= PTS_WRAP
    return bytes(
        [
            0x21 | (pts >> 29) & 0x0E,
            (pts >> 22) & 0xFF,
            0x01 | (pts >> 14) & 0xFE,
            (pts >> 7) & 0xFF,
            0x01 | (pts << 1) & 0xFE,
        ]
    )


def pes_packets(pid: int, stream_id: int, pts: int, es: bytes, counters: dict[int, int]) -> bytes:
    """One PES (with its PTS) carrying ``es``, cut into transport packets; the last packet is
    padded with adaptation-field stuffing, as muxers do."""
    header = bytes([0x80, 0x80, 5]) + _pts_field(pts)
    length = len(header) + len(es)
    if length > 0xFFFF:
        raise MuxError(f"a PES of {length} bytes does not fit its 16-bit length")
    pes = b"\x00\x00\x01" + bytes([stream_id]) + length.to_bytes(2, "big") + header + es
    out = bytearray()
    for offset in range(0, len(pes), PACKET_SIZE - 4):
        chunk = pes[offset : offset + PACKET_SIZE - 4]
        start = 0x40 if offset == 0 else 0
        cc = _next_cc(pid, counters)
        room = PACKET_SIZE - 4 - len(chunk)
        if room == 0:
            out += bytes([SYNC_BYTE, start | pid >> 8, pid & 0xFF, 0x10 | cc]) + chunk
            continue
        # An adaptation field of ``room`` bytes: its length byte, then flags and stuffing.
        field = bytes([room - 1]) + (b"\x00" + b"\xff" * (room - 2) if room > 1 else b"")
        out += bytes([SYNC_BYTE, start | pid >> 8, pid & 0xFF, 0x30 | cc]) + field + chunk
    return bytes(out)
