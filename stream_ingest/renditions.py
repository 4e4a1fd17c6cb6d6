"""Follow an alternate audio rendition beside its video, and join the two per segment.

When the variant a channel follows names an AUDIO group whose rendition has its own media
playlist, the sound is not in the video segments. :class:`AudioJoiner` reads that playlist
alongside, fetches the audio segments that cover each video segment's PTS range and joins
them into the video segment (:mod:`stream_ingest.tsjoin`), so the detectors get picture and
sound together::

    joiner = AudioJoiner(fetcher, keys, rendition.uri, cap=settings.max_segment_bytes)
    joined = await joiner.join(segment, payload)   # AudioMissing: publish the video alone

Where the audio starts is found from EXT-X-PROGRAM-DATE-TIME when both playlists carry it,
else from the media sequence number (renditions cut together number alike); from there the
audio is read forward by its timestamps, so renditions cut at other times still line up.
MPEG-TS renditions are joined as they are, packed audio (``.aac``, ``.ac3``, ...: the raw
stream after an ID3 timestamp) once rewrapped as MPEG-TS (:mod:`stream_ingest.packed`);
where the video or
the audio is fMP4, the audio fragments of the segment's time are carried beside it instead
(``joined.beside``, :mod:`stream_ingest.beside`). Where the 33-bit PTS clock wraps (every
26.5 hours) the audio is looked for afresh, as after an encoder restart.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import deque
from typing import NamedTuple

from monitor.core.errors import VqmError
from stream_ingest.beside import Piece, carry_beside
from stream_ingest.fetch import Fetcher, FetchError, PlaylistReader
from stream_ingest.keys import KeyRing, SegmentKeyError
from stream_ingest.mp4 import Mp4Error, fragment_span
from stream_ingest.packed import PackedError, as_transport_stream
from stream_ingest.playlist import (
    InitSection,
    MasterPlaylist,
    MediaPlaylist,
    PlaylistError,
    Segment,
)
from stream_ingest.tsjoin import Joined, JoinError, audio_span, join_audio, ts_span

logger = logging.getLogger(__name__)

# At most this many audio segments are fetched for one video segment (a rendition far
# behind catches up over several, instead of one video segment waiting on dozens).
MAX_AUDIO_FETCHES = 6
# Audio this far (seconds) from the video on the PTS clock is another timeline (an encoder
# restart): the audio is looked for afresh.
REALIGN_AFTER = 60.0
# Seconds of a segment that may lack joined audio before it counts as missing: audio PES
# carry a few hundred milliseconds each, and one that starts before the picture goes to the
# segment before.
AUDIO_SLACK = 0.5
# A failed audio segment is named in the events of the video segments joined while it is
# among this many audio segments before the next to fetch.
FAILURES_KEPT = 3


class AudioMissing(VqmError):
    """The sound for a video segment could not be joined; the message says why."""


class _Piece(NamedTuple):
    """One fetched audio segment and the PTS range (seconds) of its sound."""

    seq: int
    data: bytes
    start: float  # PTS of its first audio PES (fMP4: its first sample), seconds
    end: float
    init: bytes = b""  # fMP4: the init section it needs (MPEG-TS: none)


class AudioJoiner:
    """Joins one audio rendition's segments to the video segments of one follower."""

    def __init__(self, fetcher: Fetcher, keys: KeyRing, url: str, cap: int) -> None:
        self.url = url
        self._fetcher = fetcher
        self._reader = PlaylistReader(fetcher)
        self._keys = keys
        self._cap = cap
        self._next: int | None = None  # next audio sequence number to fetch
        self._pieces: deque[_Piece] = deque()
        self._failed: dict[int, str] = {}  # audio sequence number: why it gave no sound
        self._init: tuple[InitSection, bytes] | None = None  # fMP4 audio: the last init read

    async def join(self, segment: Segment, payload: bytes) -> Joined:
        """``payload`` (the video segment) with the audio of its time; AudioMissing when none
        of it could be joined (the caller publishes the video alone)."""
        span = await self._video_span(segment, payload)
        playlist = await self._playlist()
        await self._cover(playlist, segment, span)
        pieces = [p for p in self._pieces if p.end > span[0] and p.start < span[1]]
        problem = "; ".join(self._recent_failures())
        if not pieces:
            raise AudioMissing(problem or self._why_none(playlist, span))
        if segment.container == "fmp4" or any(p.init for p in pieces):
            beside = [Piece(p.data, p.init, p.start, p.end) for p in pieces]
            return dataclasses.replace(carry_beside(payload, span, beside), problem=problem)
        try:
            joined = await asyncio.to_thread(join_audio, payload, [p.data for p in pieces])
        except JoinError as exc:
            raise AudioMissing(f"audio not joinable: {exc}") from None
        return dataclasses.replace(joined, problem=problem)

    @staticmethod
    async def _video_span(segment: Segment, payload: bytes) -> tuple[float, float]:
        """The pictures' time: PTS seconds (MPEG-TS), or fragment time (fMP4)."""
        try:
            if segment.container == "fmp4":
                span = await asyncio.to_thread(fragment_span, payload, b"vide")
            else:
                span = await asyncio.to_thread(ts_span, payload)
        except Mp4Error as exc:
            raise AudioMissing(f"video segment is not readable fMP4 ({exc})") from None
        except JoinError as exc:
            raise AudioMissing(f"video segment is not joinable MPEG-TS ({exc})") from None
        if span is None:
            raise AudioMissing("video segment has no timestamped pictures to join audio to")
        return span

    def _recent_failures(self) -> list[str]:
        """Why the audio segments around the one fetched last gave no sound (a failed one
        leaves a hole in the sound of the video segments on either side of its time)."""
        assert self._next is not None
        for seq in [s for s in self._failed if s < self._next - FAILURES_KEPT]:
            del self._failed[seq]
        return list(self._failed.values())

    async def _playlist(self) -> MediaPlaylist:
        try:
            playlist = await self._reader.read(self.url)
        except FetchError as exc:
            raise AudioMissing(f"audio playlist: {exc.detail}") from None
        except PlaylistError as exc:
            raise AudioMissing(f"audio playlist: {exc}") from None
        if isinstance(playlist, MasterPlaylist):
            raise AudioMissing("audio rendition URI is a master playlist")
        return playlist

    async def _cover(
        self, playlist: MediaPlaylist, video: Segment, span: tuple[float, float]
    ) -> None:
        """Fetch audio forward until it reaches the end of ``span`` (or runs out)."""
        while self._pieces and self._pieces[0].end <= span[0]:
            self._pieces.popleft()  # already joined to earlier video
        if self._next is None or self._off_timeline(span):
            self._pieces.clear()
            self._next = self._start_seq(playlist, video)
        if self._next < playlist.first_seq:
            self._next = playlist.first_seq  # the window moved past; the gap shows as missing
        for _ in range(MAX_AUDIO_FETCHES):
            if self._pieces and self._pieces[-1].end >= span[1]:
                return
            if self._next > playlist.last_seq:
                return  # not listed yet: late audio
            segment = playlist.segments[self._next - playlist.first_seq]
            self._next += 1  # first: an audio segment that fails is not asked for again
            try:
                piece = await self._fetch(segment)
            except AudioMissing as exc:  # the next one may still have the sound wanted
                self._failed[segment.seq] = str(exc)
                continue
            if piece is not None and piece.end > span[0]:
                self._pieces.append(piece)

    def _off_timeline(self, span: tuple[float, float]) -> bool:
        if not self._pieces:
            return False
        return (
            self._pieces[0].start > span[1] + REALIGN_AFTER
            or self._pieces[-1].end < span[0] - REALIGN_AFTER
        )

    @staticmethod
    def _start_seq(playlist: MediaPlaylist, video: Segment) -> int:
        """The audio segment to start from: the one whose wall clock spans the video's when
        both playlists carry EXT-X-PROGRAM-DATE-TIME, else the one of the same number; then
        one earlier, since the sound of a first picture may begin in the segment before."""
        seq, clock = video.seq, video.program_date_time
        dated = [(s.program_date_time, s.seq) for s in playlist.segments if s.program_date_time]
        if clock is not None and dated:
            started = [n for when, n in dated if when is not None and when <= clock]
            seq = started[-1] if started else dated[0][1]
        return min(max(seq - 1, playlist.first_seq), playlist.last_seq)

    async def _fetch(self, segment: Segment) -> _Piece | None:
        if segment.gap:
            return None
        init = b""
        try:
            if segment.init is not None:
                init = await self._init_bytes(segment.init)
            data = await self._fetcher.get(segment.uri, cap=self._cap, byterange=segment.byterange)
            if segment.key is not None:
                data = await self._keys.decrypt(data, segment.key, segment.seq)
            span = await asyncio.to_thread(_audio_span, segment, init, data)
        except FetchError as exc:
            raise AudioMissing(f"audio segment {segment.seq}: {exc.detail}") from None
        except SegmentKeyError as exc:
            raise AudioMissing(f"audio segment {segment.seq}: {exc.detail}") from None
        except PackedError as exc:
            raise AudioMissing(f"packed audio segment {segment.seq}: {exc}") from None
        except Mp4Error as exc:
            raise AudioMissing(f"fMP4 audio segment {segment.seq}: {exc}") from None
        if span is None:
            logger.warning("audio segment %s has no timestamped audio", segment.uri)
            return None
        return _Piece(segment.seq, span[0], *span[1], init=init)

    async def _init_bytes(self, init: InitSection) -> bytes:
        """EXT-X-MAP bytes of the audio rendition, fetched once per distinct init section."""
        if self._init is None or self._init[0] != init:
            data = await self._fetcher.get(init.uri, cap=self._cap, byterange=init.byterange)
            self._init = (init, data)
        return self._init[1]

    def _why_none(self, playlist: MediaPlaylist, span: tuple[float, float]) -> str:
        listed = f"the audio playlist lists up to segment {playlist.last_seq}"
        return f"no audio for PTS {span[0]:.3f}-{span[1]:.3f} s ({listed})"


def _audio_span(
    segment: Segment, init: bytes, data: bytes
) -> tuple[bytes, tuple[float, float]] | None:
    """The audio segment as it is joined (MPEG-TS; packed audio rewrapped; fMP4 as it is)
    and the span of its sound, seconds; None when it has no timed sound."""
    if segment.init is not None or segment.container == "fmp4":
        span = fragment_span(init + data, b"soun")
        return None if span is None else (data, span)
    data = as_transport_stream(data)
    span = audio_span(data)
    return None if span is None else (data, span)
