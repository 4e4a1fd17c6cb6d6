"""Join an alternate audio rendition's MPEG-TS to a video segment's, in plain Python.

An HLS master playlist may carry the sound in a media playlist of its own (EXT-X-MEDIA
TYPE=AUDIO with a URI). The detectors need picture and sound in one segment, and ingest loads
no media library, so the join is done on transport packets: the video segment's packets are
kept as they are, and the audio packets whose PES starts inside the video's PTS range are
added under a PID of their own and announced in one new PMT::

    video = ts_span(video_bytes)                  # PTS range of the pictures, or None
    joined = join_audio(video_bytes, [audio_seg_1, audio_seg_2])
    joined.payload                                # one MPEG-TS, PAT and PMT first
    joined.audio                                  # PTS range of the sound it took, or None

Timestamps are not touched: both renditions come from one encoder clock, so the decoder
downstream lines them up by PTS, and each audio PES goes to the one video segment its start
falls in (consecutive segments never share or lose a PES).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from stream_ingest.ts import (
    AUDIO_TYPES,
    PACKET_SIZE,
    PAT_PID,
    PTS_HZ,
    PTS_WRAP,
    SYNC_BYTE,
    VIDEO_TYPES,
    Packet,
    SectionReader,
    crc32_mpeg,
    parse_packet,
    parse_pat,
    pes_pts,
)
from stream_ingest.tsmux import EsEntry, MuxError, pat, pmt, psi_packet

# The added audio streams' PIDs start here unless the video segment already uses them.
AUDIO_PID_BASE = 0x1100
_MAX_PID = 0x1FFE


class JoinError(ValueError):
    """A segment that is not MPEG-TS with a PAT and PMT (so no join is possible)."""


@dataclass
class TsParts:
    """A transport stream taken apart: its program, streams, and packets by PID."""

    program: int
    pcr_pid: int
    streams: list[EsEntry]
    packets: list[Packet]
    psi_pids: set[int] = field(default_factory=set)

    def pes_units(self, pid: int) -> list[tuple[int | None, list[Packet]]]:
        """The PES of one PID as (PTS, its packets), in stream order."""
        units: list[tuple[int | None, list[Packet]]] = []
        for packet in self.packets:
            if packet.pid != pid or not packet.has_payload:
                continue
            if packet.pusi or not units:
                units.append((pes_pts(packet.payload) if packet.pusi else None, []))
            units[-1][1].append(packet)
        return units


@dataclass(frozen=True)
class Joined:
    """A video segment with the sound that fell in its time; ``video`` and ``audio`` are
    PTS ranges in seconds (``audio`` None: none of the audio given fell in the range)."""

    payload: bytes
    video: tuple[float, float]
    audio: tuple[float, float] | None
    holes: float = 0.0  # seconds between the joined PES where sound is lacking
    problem: str = ""  # why audio segments of its time gave no sound (none: "")
    beside: bytes = b""  # sound carried beside ``payload``, not in it (fMP4; b"": none)

    @property
    def audio_missing(self) -> float:
        """Seconds of the video's range the joined sound does not cover."""
        start, end = self.video
        if self.audio is None:
            return end - start
        edges = max(0.0, self.audio[0] - start) + max(0.0, end - self.audio[1])
        return edges + self.holes


def split_ts(data: bytes) -> TsParts:
    """Packets, program and streams of a whole MPEG-TS segment (the first program)."""
    if len(data) < PACKET_SIZE or data[0] != SYNC_BYTE:
        raise JoinError("not MPEG-TS (no sync byte at the start)")
    packets = [
        parse_packet(data[i : i + PACKET_SIZE])
        for i in range(0, len(data) - PACKET_SIZE + 1, PACKET_SIZE)
        if data[i] == SYNC_BYTE
    ]
    pmt_pid = _first_pmt_pid(packets)
    section = _first_section(packets, pmt_pid)
    if section is None or len(section) < 16 or section[0] != 0x02 or crc32_mpeg(section):
        raise JoinError("no valid PMT in the segment")
    return TsParts(
        program=(section[3] << 8) | section[4],
        pcr_pid=((section[8] & 0x1F) << 8) | section[9],
        streams=_es_entries(section),
        packets=packets,
        psi_pids={PAT_PID, pmt_pid},
    )


def _first_pmt_pid(packets: list[Packet]) -> int:
    section = _first_section(packets, PAT_PID)
    try:
        table = parse_pat(section) if section is not None else None
    except ValueError as exc:
        raise JoinError(f"bad PAT: {exc}") from None
    if table is None or not table.programs:
        raise JoinError("no PAT with a program in the segment")
    return next(iter(table.programs.values()))


def _first_section(packets: Iterable[Packet], pid: int) -> bytes | None:
    reader = SectionReader()
    for packet in packets:
        if packet.pid == pid:
            sections = reader.feed(packet)
            if sections:
                return sections[0]
    return None


def _es_entries(section: bytes) -> list[EsEntry]:
    end = len(section) - 4
    i = 12 + (((section[10] & 0x0F) << 8) | section[11])
    entries = []
    while i + 5 <= end:
        info_end = i + 5 + (((section[i + 3] & 0x0F) << 8) | section[i + 4])
        pid = ((section[i + 1] & 0x1F) << 8) | section[i + 2]
        entries.append(EsEntry(section[i], pid, bytes(section[i + 5 : info_end])))
        i = info_end
    return entries


def ts_span(data: bytes) -> tuple[float, float] | None:
    """The video's PTS range in seconds (first picture to the end of the last), or None
    when the segment has no video with timestamps."""
    parts = split_ts(data)
    return _video_span(parts)


def audio_span(data: bytes) -> tuple[float, float] | None:
    """First audio PES start of a segment to the end of its last, in seconds (None: no
    timestamped audio in it)."""
    try:
        parts = split_ts(data)
    except JoinError:
        return None
    stamps = [
        pts
        for stream in parts.streams
        if stream.stream_type in AUDIO_TYPES
        for pts, _ in parts.pes_units(stream.pid)
        if pts is not None
    ]
    if not stamps:
        return None
    offsets = sorted(_signed(pts - stamps[0]) for pts in stamps)  # across a wrap, in order
    step = (offsets[-1] - offsets[0]) / max(1, len(offsets) - 1)
    return (stamps[0] + offsets[0]) / PTS_HZ, (stamps[0] + offsets[-1] + step) / PTS_HZ


def _video_span(parts: TsParts) -> tuple[float, float] | None:
    video = next((s for s in parts.streams if s.stream_type in VIDEO_TYPES), None)
    if video is None:
        return None
    stamps = [pts for pts, _ in parts.pes_units(video.pid) if pts is not None]
    if not stamps:
        return None
    first = stamps[0]
    offsets = sorted(_signed(pts - first) for pts in stamps)
    frame = _typical_step(stamps)  # the last picture lasts as long as the others
    return (first + offsets[0]) / PTS_HZ, (first + offsets[-1] + frame) / PTS_HZ


def _signed(delta: int) -> int:
    """A PTS difference on the 33-bit clock, as the shorter way round."""
    delta %= PTS_WRAP
    return delta - PTS_WRAP if delta > PTS_WRAP // 2 else delta


def join_audio(video_data: bytes, audio_segments: Sequence[bytes]) -> Joined:
    """The video segment with the audio PES of ``audio_segments`` that start in its range."""
    video = split_ts(video_data)
    span = _video_span(video)
    if span is None:
        raise JoinError("the video segment has no timestamped video")
    start, end = round(span[0] * PTS_HZ), round(span[1] * PTS_HZ)
    used = {p.pid for p in video.packets} | {s.pid for s in video.streams}
    entries: list[EsEntry] = []  # the k-th audio stream of every audio segment is one stream
    found: list[list[tuple[int, list[Packet]]]] = []
    for data in audio_segments:
        audio = split_ts(data)
        streams = [s for s in audio.streams if s.stream_type in AUDIO_TYPES]
        for k, stream in enumerate(streams):
            if k == len(entries):
                pid = _free_pid(used, AUDIO_PID_BASE + k)
                used.add(pid)
                entries.append(EsEntry(stream.stream_type, pid, stream.info))
                found.append([])
            found[k] += [(t, pk) for t, pk in audio.pes_units(stream.pid) if t is not None]
    units = []
    steps = []
    for k, got in enumerate(found):
        # The PES that straddle the picture's edges go to both segments: the decoder reads
        # a segment's sound only over its pictures' span, so none is counted twice, and a
        # segment's sound starts at its first picture (not a PES later).
        steps.append(_typical_step([pts for pts, _ in got]))
        units += [
            (pts, entries[k].pid, packets)
            for pts, packets in got
            if -steps[k] < _signed(pts - start) < end - start
        ]
    units.sort(key=lambda unit: _signed(unit[0] - start))
    payload = _mux(video, entries, units, start)
    if not entries:
        return Joined(payload=payload, video=span, audio=None)
    # The first audio stream's coverage stands for the sound's (the others are alike).
    covered = sorted(_signed(pts - start) for pts, pid, _ in units if pid == entries[0].pid)
    if not covered:
        return Joined(payload=payload, video=span, audio=None)
    audio_span = ((start + covered[0]) / PTS_HZ, (start + covered[-1] + steps[0]) / PTS_HZ)
    holes = _holes(covered, steps[0]) / PTS_HZ
    return Joined(payload=payload, video=span, audio=audio_span, holes=holes)


def _holes(offsets: list[int], step: int) -> int:
    """Ticks between consecutive PES starts beyond twice their usual step (a lost segment
    between two that were joined), less the one PES that starts each."""
    gaps = (b - a for a, b in zip(offsets, offsets[1:], strict=False))
    return sum(gap - step for gap in gaps if gap > 2 * step)


def _typical_step(stamps: list[int]) -> int:
    """The median step between distinct PTS (90 kHz), 0 with fewer than two."""
    ordered = sorted({_signed(pts - stamps[0]) for pts in stamps}) if stamps else []
    steps = sorted(b - a for a, b in zip(ordered, ordered[1:], strict=False))
    return steps[len(steps) // 2] if steps else 0


def _free_pid(used: set[int], wanted: int) -> int:
    pid = wanted
    while pid in used:
        pid = pid + 1 if pid < _MAX_PID else 0x20
    return pid


def _mux(
    video: TsParts, audio: list[EsEntry], units: list[tuple[int, int, list[Packet]]], start: int
) -> bytes:
    """PAT and the joined PMT first, then the video's packets with each audio PES put in
    before the first video PES that starts after it (so the two stay interleaved)."""
    pmt_pid = max(video.psi_pids)
    counters: dict[int, int] = {}
    streams = video.streams + audio
    try:
        out = bytearray(psi_packet(PAT_PID, pat(video.program, pmt_pid), counters))
        out += psi_packet(pmt_pid, pmt(video.program, video.pcr_pid, streams), counters)
    except MuxError as exc:
        raise JoinError(str(exc)) from None
    video_pids = {s.pid for s in video.streams if s.stream_type in VIDEO_TYPES}
    pending = iter(units)
    unit = next(pending, None)
    for packet in video.packets:
        if packet.pid in video.psi_pids:
            continue
        if packet.pusi and packet.pid in video_pids:
            pts = pes_pts(packet.payload)
            while (
                unit is not None
                and pts is not None
                and (_signed(unit[0] - start) <= _signed(pts - start))
            ):
                out += _repid(unit[2], unit[1], counters)
                unit = next(pending, None)
        out += packet.raw
    while unit is not None:
        out += _repid(unit[2], unit[1], counters)
        unit = next(pending, None)
    return bytes(out)


def _repid(packets: list[Packet], pid: int, counters: dict[int, int]) -> bytes:
    """The packets moved to ``pid`` with continuity counters that run on without a break."""
    out = bytearray()
    for packet in packets:
        raw = bytearray(packet.raw)
        raw[1] = (raw[1] & 0xE0) | (pid >> 8)
        raw[2] = pid & 0xFF
        cc = counters.get(pid, -1) + 1 & 0x0F
        counters[pid] = cc
        raw[3] = (raw[3] & 0xF0) | cc
        out += raw
    return bytes(out)
