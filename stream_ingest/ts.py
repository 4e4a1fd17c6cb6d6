"""MPEG-TS as ingest reads it, in plain Python: ingest never loads PyAV.

What a stream source needs from the transport stream, and no more: 188-byte packets
(:func:`parse_packet`), found in received bytes with their sync bytes checked
(:class:`TsFramer`); PSI sections (:class:`SectionReader`, :func:`parse_pat`,
:func:`parse_pmt`); PES timestamps and keyframes (:func:`pes_pts`, :func:`starts_keyframe`);
and the :class:`Segmenter` that cuts a stream into segments each of which decodes alone::

    framer, segmenter = TsFramer(), Segmenter(target=2.0, max_duration=10.0)
    for raw in framer.feed(datagram):
        for segment in segmenter.feed(parse_packet(raw)):
            ...   # TsSegment: bytes (PAT and PMT first), media_start from the PTS, duration

Packets are copied into segments unchanged, so the decoder downstream sees the sender's PTS
and alerts keep the stream's media times.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PACKET_SIZE = 188
SYNC_BYTE = 0x47
PAT_PID = 0x0000
NULL_PID = 0x1FFF
PTS_HZ = 90_000
PCR_HZ = 27_000_000
PTS_WRAP = 1 << 33
PCR_WRAP = PTS_WRAP * 300

# Elementary stream types (ISO/IEC 13818-1 table 2-34 and ATSC A/52) vqm can name.
VIDEO_TYPES = {0x01: "mpeg1video", 0x02: "mpeg2video", 0x10: "mpeg4", 0x1B: "h264", 0x24: "hevc"}
AUDIO_TYPES = {0x03: "mp2", 0x04: "mp2", 0x0F: "aac", 0x11: "aac_latm", 0x81: "ac3", 0x87: "eac3"}

# Syncs lost after this many bad sync bytes in a row, regained after this many good (TR 101 290).
SYNC_LOST_AFTER = 2
SYNC_FOUND_AFTER = 5


@dataclass(frozen=True, slots=True)
class Packet:
    """One transport packet's header fields; ``raw`` is the 188 bytes as received."""

    raw: bytes
    pid: int
    pusi: bool  # payload_unit_start_indicator: a PES or a section starts here
    scrambling: int
    cc: int
    has_payload: bool
    discontinuity: bool  # the adaptation field's discontinuity_indicator
    random_access: bool  # the adaptation field's random_access_indicator
    pcr: int | None  # 27 MHz
    payload_offset: int

    @property
    def payload(self) -> bytes:
        return self.raw[self.payload_offset :] if self.has_payload else b""


def parse_packet(raw: bytes) -> Packet:
    """The header of one 188-byte packet whose first byte is the sync byte."""
    b1, b2, b3 = raw[1], raw[2], raw[3]
    control = (b3 >> 4) & 0x3
    offset, discontinuity, random_access, pcr = 4, False, False, None
    if control & 0x2:
        length = raw[4]
        offset = 5 + length
        if length and offset <= PACKET_SIZE:
            flags = raw[5]
            discontinuity, random_access = bool(flags & 0x80), bool(flags & 0x40)
            if flags & 0x10 and length >= 7:
                base = (
                    (raw[6] << 25) | (raw[7] << 17) | (raw[8] << 9) | (raw[9] << 1) | (raw[10] >> 7)
                )
                pcr = base * 300 + (((raw[10] & 0x1) << 8) | raw[11])
    return Packet(
        raw=raw,
        pid=((b1 & 0x1F) << 8) | b2,
        pusi=bool(b1 & 0x40),
        scrambling=(b3 >> 6) & 0x3,
        cc=b3 & 0x0F,
        has_payload=bool(control & 0x1) and offset < PACKET_SIZE,
        discontinuity=discontinuity,
        random_access=random_access,
        pcr=pcr,
        payload_offset=min(offset, PACKET_SIZE),
    )


class TsFramer:
    """Finds packets in received bytes and keeps TR 101 290's sync state (1.1, 1.2).

    While in sync, a packet whose sync byte is not 0x47 counts one ``sync_errors`` and is
    dropped. Sync is lost after 2 bad sync bytes in a row (``sync_lost`` counts the episodes);
    the framer then hunts for a 0x47 and regains sync after 5 good packets in a row, which
    are held back until then. ``stream=True`` (a pipe) carries a partial
    packet over to the next call; otherwise (a datagram) a partial packet is dropped and
    counted as one sync error.
    """

    def __init__(self, stream: bool = False) -> None:
        self.stream = stream
        self.in_sync = True
        self.sync_errors = 0
        self.sync_lost = 0
        self._bad_run = 0
        self._held: list[bytes] = []
        self._rest = b""

    def feed(self, data: bytes) -> list[bytes]:
        """The whole packets in ``data`` (plus any carried over), in order."""
        if self._rest:
            data, self._rest = self._rest + data, b""
        size = len(data)
        if self.in_sync and size % PACKET_SIZE == 0 and self._aligned(data):
            self._bad_run = 0
            return [data[i : i + PACKET_SIZE] for i in range(0, size, PACKET_SIZE)]
        out: list[bytes] = []
        pos = 0
        while size - pos >= PACKET_SIZE:
            if data[pos] == SYNC_BYTE:
                self._good(data[pos : pos + PACKET_SIZE], out)
                pos += PACKET_SIZE
                continue
            if self.in_sync:  # the slot is there, its sync byte is not: drop it, keep step
                self._bad()
                pos += PACKET_SIZE
                continue
            self._held = []  # hunting: look for the next candidate sync byte
            found = data.find(b"\x47", pos + 1)
            pos = size if found < 0 else found
        if pos < size:
            if self.stream:
                self._rest = data[pos:]
            else:
                self._bad()
        return out

    @staticmethod
    def _aligned(data: bytes) -> bool:
        return all(data[i] == SYNC_BYTE for i in range(0, len(data), PACKET_SIZE))

    def _good(self, packet: bytes, out: list[bytes]) -> None:
        self._bad_run = 0
        if self.in_sync:
            out.append(packet)
            return
        self._held.append(packet)
        if len(self._held) >= SYNC_FOUND_AFTER:
            self.in_sync = True
            out.extend(self._held)
            self._held = []

    def _bad(self) -> None:
        self.sync_errors += 1
        self._bad_run += 1
        if self._bad_run >= SYNC_LOST_AFTER:
            self.in_sync = False
            self.sync_lost += 1


class SectionReader:
    """Reassembles the PSI sections of one PID from its packets (pointer field, sections that
    span packets, several in one packet, stuffing)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._open = False

    def feed(self, packet: Packet) -> list[bytes]:
        """The sections this packet completes."""
        payload = packet.payload
        out: list[bytes] = []
        if packet.pusi:
            if not payload:
                return out
            pointer = payload[0]
            if self._open:
                self._buf += payload[1 : 1 + pointer]
                out += self._complete()
            self._buf = bytearray(payload[1 + pointer :])
            self._open = True
        elif self._open:
            self._buf += payload
        else:
            return out
        out += self._complete()
        return out

    def reset(self) -> None:
        """Forget a partial section (a packet of this PID was lost)."""
        self._buf, self._open = bytearray(), False

    def _complete(self) -> list[bytes]:
        out: list[bytes] = []
        buf = self._buf
        while len(buf) >= 3:
            if buf[0] == 0xFF:  # stuffing: nothing more in this payload unit
                self.reset()
                break
            end = 3 + (((buf[1] & 0x0F) << 8) | buf[2])
            if len(buf) < end:
                break
            out.append(bytes(buf[:end]))
            del buf[:end]
        return out


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc32_mpeg(data: bytes) -> int:
    """CRC-32/MPEG-2; over a whole section including its CRC it is 0."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC_TABLE[((crc >> 24) ^ byte) & 0xFF]
    return crc


class PsiError(ValueError):
    """A PAT or PMT section that is not what its PID must carry; the message says why."""


@dataclass(frozen=True)
class Pat:
    version: int
    programs: dict[int, int]  # program_number -> PMT PID (the NIT's program 0 left out)


@dataclass(frozen=True)
class Stream:
    stream_type: int
    pid: int

    @property
    def kind(self) -> str:
        if self.stream_type in VIDEO_TYPES:
            return "video"
        return "audio" if self.stream_type in AUDIO_TYPES else "other"

    @property
    def codec(self) -> str:
        return (
            VIDEO_TYPES.get(self.stream_type)
            or AUDIO_TYPES.get(self.stream_type)
            or (f"type 0x{self.stream_type:02x}")
        )


@dataclass(frozen=True)
class Pmt:
    program: int
    version: int
    pcr_pid: int
    streams: tuple[Stream, ...] = field(default_factory=tuple)

    @property
    def video(self) -> Stream | None:
        return next((s for s in self.streams if s.kind == "video"), None)


def _long_section(section: bytes, table_id: int, what: str) -> bytes:
    """The body of a long-form section after checking its table id, length and CRC."""
    if len(section) < 12:
        raise PsiError(f"{what} section of {len(section)} bytes is too short")
    if section[0] != table_id:
        raise PsiError(f"table_id 0x{section[0]:02x} where a {what} (0x{table_id:02x}) is due")
    if crc32_mpeg(section) != 0:
        raise PsiError(f"{what} section fails its CRC")
    return section


def parse_pat(section: bytes) -> Pat:
    """The programs of a PAT section; :class:`PsiError` when it is not a valid PAT."""
    _long_section(section, 0x00, "PAT")
    programs: dict[int, int] = {}
    for i in range(8, len(section) - 4, 4):
        number = (section[i] << 8) | section[i + 1]
        pid = ((section[i + 2] & 0x1F) << 8) | section[i + 3]
        if number != 0:
            programs[number] = pid
    return Pat(version=(section[5] >> 1) & 0x1F, programs=programs)


def parse_pmt(section: bytes) -> Pmt:
    """The streams of a PMT section; :class:`PsiError` when it is not a valid PMT."""
    _long_section(section, 0x02, "PMT")
    end = len(section) - 4
    info_length = ((section[10] & 0x0F) << 8) | section[11]
    streams: list[Stream] = []
    i = 12 + info_length
    while i + 5 <= end:
        pid = ((section[i + 1] & 0x1F) << 8) | section[i + 2]
        streams.append(Stream(stream_type=section[i], pid=pid))
        i += 5 + (((section[i + 3] & 0x0F) << 8) | section[i + 4])
    return Pmt(
        program=(section[3] << 8) | section[4],
        version=(section[5] >> 1) & 0x1F,
        pcr_pid=((section[8] & 0x1F) << 8) | section[9],
        streams=tuple(streams),
    )


_NO_PES_HEADER = {0xBC, 0xBE, 0xBF, 0xF0, 0xF1, 0xF2, 0xF8, 0xFF}


def pes_pts(payload: bytes) -> int | None:
    """The PTS (90 kHz, 33 bits) of the PES that starts ``payload``, if it has one."""
    if len(payload) < 14 or payload[:3] != b"\x00\x00\x01" or payload[3] in _NO_PES_HEADER:
        return None
    if not payload[7] & 0x80:
        return None
    b = payload[9:14]
    return ((b[0] >> 1) & 0x7) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1


def _es_start(payload: bytes) -> bytes:
    """The elementary stream bytes after the PES header."""
    if len(payload) < 9 or payload[:3] != b"\x00\x00\x01":
        return b""
    return payload[9 + payload[8] :]


def starts_keyframe(codec: str, packet: Packet) -> bool:
    """Whether this packet starts a PES a decoder can start at: the random access indicator,
    or an H.264 IDR / HEVC IRAP / MPEG-2 sequence header in its first packet."""
    if packet.random_access:
        return True
    es = _es_start(packet.payload)
    pos = es.find(b"\x00\x00\x01")
    while 0 <= pos < len(es) - 3:
        header = es[pos + 3]
        if codec == "h264" and header & 0x1F == 5:
            return True
        if codec == "hevc" and 16 <= (header >> 1) & 0x3F <= 21:
            return True
        if codec in ("mpeg1video", "mpeg2video") and header == 0xB3:
            return True
        pos = es.find(b"\x00\x00\x01", pos + 3)
    return False


class Unwrapper:
    """A counter that wraps (33-bit PTS, PCR) as one that does not: each value is placed
    at the signed shortest distance from the previous one."""

    def __init__(self, modulus: int = PTS_WRAP) -> None:
        self.modulus = modulus
        self._raw: int | None = None
        self.value = 0

    def __call__(self, raw: int) -> int:
        if self._raw is None:
            self.value = raw
        else:
            delta = (raw - self._raw) % self.modulus
            if delta > self.modulus // 2:
                delta -= self.modulus
            self.value += delta
        self._raw = raw
        return self.value


@dataclass(frozen=True)
class TsSegment:
    """A run of packets that decodes alone: PAT and PMT, then from a keyframe on."""

    payload: bytes
    media_start: float  # seconds: the first PES PTS of the cut stream, unwrapped
    duration: float
    keyframe: bool  # starts at a random access point (False: cut for length)
    discontinuity: bool
    codecs: str


# A PTS step beyond this (either way) is a timeline discontinuity, not wrap or reordering.
_PTS_JUMP = 10 * PTS_HZ


class Segmenter:
    """Cuts a transport stream into segments on PES boundaries of its first video stream
    (the first audio stream when it has no video): at the first keyframe ``target``
    seconds (by PTS) after the segment's start, or at any PES start after ``max_duration``.

    Nothing is emitted before the first PAT, PMT and keyframe. Each segment starts with
    the newest PAT and PMT packets, so it decodes alone.
    """

    def __init__(self, target: float, max_duration: float) -> None:
        self.target = round(target * PTS_HZ)
        self.max_duration = round(max(max_duration, target) * PTS_HZ)
        self.pmt: Pmt | None = None
        self._pat: Pat | None = None
        self._pmt_pid: int | None = None
        self._readers: dict[int, SectionReader] = {PAT_PID: SectionReader()}
        self._psi_packets: dict[int, list[bytes]] = {}
        self._psi_pending: dict[int, list[bytes]] = {}
        self._packets: list[bytes] = []
        self._start: int | None = None  # unwrapped PTS of the segment's first cut-stream PES
        self._last: int | None = None
        self._keyframe = False
        self._discontinuity = False
        self._pts = Unwrapper()
        self._frame = 0  # last PTS step of the cut stream, for the duration of the last one

    @property
    def cut_stream(self) -> Stream | None:
        if self.pmt is None:
            return None
        return self.pmt.video or next((s for s in self.pmt.streams if s.kind == "audio"), None)

    def feed(self, packet: Packet) -> list[TsSegment]:
        """Take one packet; the segments it completes (zero or one)."""
        pid = packet.pid
        if pid == PAT_PID or pid == self._pmt_pid:
            self._psi(packet)
        stream = self.cut_stream
        out: list[TsSegment] = []
        if stream is not None and pid == stream.pid and packet.pusi:
            out += self._pes_start(stream, packet)
        if self._start is not None:
            self._packets.append(packet.raw)
        return out

    def flush(self) -> TsSegment | None:
        """The segment in progress, ended here (the input ended or stopped); the next one
        waits for a keyframe and is marked as a discontinuity."""
        segment = None
        if self._start is not None and self._last is not None:
            segment = self._emit(self._last + self._frame)
        self._packets, self._start, self._last = [], None, None
        self._discontinuity = True
        return segment

    def _psi(self, packet: Packet) -> None:
        """Keep the newest PAT and PMT (their packets, for the head of each segment)."""
        pending = self._psi_pending.setdefault(packet.pid, [])
        if packet.pusi:
            pending.clear()
        pending.append(packet.raw)
        reader = self._readers.setdefault(packet.pid, SectionReader())
        for section in reader.feed(packet):
            try:
                if packet.pid == PAT_PID:
                    self._pat = parse_pat(section)
                    self._pmt_pid = (
                        min(self._pat.programs.items())[1] if self._pat.programs else None
                    )
                else:
                    self.pmt = parse_pmt(section)
            except PsiError:
                continue
            self._psi_packets[packet.pid] = list(pending)

    def _pes_start(self, stream: Stream, packet: Packet) -> list[TsSegment]:
        raw_pts = pes_pts(packet.payload)
        if raw_pts is None:
            return []
        previous = self._pts.value if self._last is not None else None
        pts = self._pts(raw_pts)
        if previous is not None and abs(pts - previous) > _PTS_JUMP:
            self._discontinuity = True
        keyframe = starts_keyframe(stream.codec, packet)
        out: list[TsSegment] = []
        if self._start is None:
            if not keyframe or not self._have_psi():
                return out
        else:
            elapsed = pts - self._start
            jumped = previous is not None and abs(pts - previous) > _PTS_JUMP
            due = (keyframe and elapsed >= self.target) or elapsed >= self.max_duration
            if not (due or jumped):
                self._step(pts)
                return out
            out.append(self._emit(self._last_end() if jumped else pts))
        self._begin(pts, keyframe)
        return out

    def _have_psi(self) -> bool:
        return self.pmt is not None and {PAT_PID, self._pmt_pid} <= set(self._psi_packets)

    def _step(self, pts: int) -> None:
        if self._last is not None and pts > self._last:
            self._frame = pts - self._last
        self._last = max(pts, self._last or pts)

    def _last_end(self) -> int:
        assert self._last is not None
        return self._last + self._frame

    def _begin(self, pts: int, keyframe: bool) -> None:
        self._packets = [p for pid in sorted(self._psi_packets) for p in self._psi_packets[pid]]
        self._start, self._last, self._keyframe = pts, pts, keyframe

    def _emit(self, end: int) -> TsSegment:
        assert self._start is not None
        segment = TsSegment(
            payload=b"".join(self._packets),
            media_start=self._start / PTS_HZ,
            duration=max(0, end - self._start) / PTS_HZ,
            keyframe=self._keyframe,
            discontinuity=self._discontinuity,
            codecs=",".join(s.codec for s in self.pmt.streams) if self.pmt else "",
        )
        self._discontinuity = False
        return segment
