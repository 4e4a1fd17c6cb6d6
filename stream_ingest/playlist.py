"""HLS playlist parsing (RFC 8216): media playlists to follow, master playlists to choose from.

Parsing is pure (text in, models out) so the follower, ``vqm scan`` and the tests share it.
Malformed input raises :class:`PlaylistError` with one line naming what is wrong and where::

    playlist = parse_playlist(text, url="https://origin/news/index.m3u8")
    if isinstance(playlist, MasterPlaylist):
        variant = playlist.best_variant()      # highest BANDWIDTH; fetch variant.uri next
    else:
        for segment in playlist.segments:      # absolute URIs, media sequence numbers
            ...

Supported tags: EXTM3U, EXT-X-TARGETDURATION, EXT-X-MEDIA-SEQUENCE,
EXT-X-DISCONTINUITY-SEQUENCE, EXTINF, EXT-X-DISCONTINUITY, EXT-X-ENDLIST, EXT-X-PLAYLIST-TYPE,
EXT-X-PROGRAM-DATE-TIME, EXT-X-MAP, EXT-X-BYTERANGE, EXT-X-KEY (each segment carries its key;
the follower decrypts AES-128 and reports the methods it cannot), EXT-X-GAP, EXT-X-SKIP (an
LL-HLS delta update: numbering carries on after the skipped segments), EXT-X-DATERANGE with
SCTE35-OUT/IN and EXT-X-CUE-OUT/-CONT/-IN and EXT-X-SCTE35 (ad break cues on the segment they
precede), EXT-X-STREAM-INF and EXT-X-MEDIA (renditions). LL-HLS parts (EXT-X-PART,
EXT-X-PRELOAD-HINT) and other tags are ignored, as RFC 8216 section 6.3.1 asks of clients: the
follower follows full segments.

Where an origin breaks the letter of RFC 8216 but its meaning is clear, the playlist is
*tolerated* and ``playlist.warnings`` says what was forgiven: a byte order mark or blank lines
before ``#EXTM3U``, a missing EXT-X-TARGETDURATION (the longest EXTINF, rounded up, stands in),
a fractional or missing BANDWIDTH, a trailing EXTINF or EXT-X-STREAM-INF whose URI is not yet
written (a live playlist caught mid-write: the entry is left for the next reload). What cannot
be followed without guessing is refused with a :class:`PlaylistError`.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple, overload
from urllib.parse import urljoin, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from monitor.core.errors import VqmError

Container = Literal["mpegts", "fmp4", "unknown"]

_ATTRIBUTE = re.compile(r'\s*([A-Z0-9-]+)=("[^"\r\n]*"|[^",\s]*)\s*(?:,|$)')
_BYTERANGE = re.compile(r"([0-9]+)(?:@([0-9]+))?")
_DIGITS = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*)?")
# Ad break tags come in many vendors' spellings (``ElapsedTime=``, unquoted base64): read
# them loosely, and a cue that still does not read is a warning, never a refused playlist.
_LOOSE_ATTRIBUTE = re.compile(r'\s*([A-Za-z0-9_-]+)=("[^"]*"|[^,]*)\s*(?:,|$)')
_IV = re.compile(r"0[xX]([0-9A-Fa-f]{1,32})")
# A relative URI that is only path segments (the common ``seg123.ts``): it resolves by
# appending to the playlist's directory, which is what urljoin would give, at a tenth of the
# cost (a 100,000-entry playlist spent most of its parse in urljoin).
_PLAIN_RELATIVE = re.compile(
    r"[A-Za-z0-9_~%-][A-Za-z0-9_.~%-]*(?:/[A-Za-z0-9_~%-][A-Za-z0-9_.~%-]*)*"
)
_MEDIA_ONLY_AFTER_SEGMENTS = {
    "#EXT-X-TARGETDURATION",
    "#EXT-X-MEDIA-SEQUENCE",
    "#EXT-X-DISCONTINUITY-SEQUENCE",
    "#EXT-X-PLAYLIST-TYPE",
}
_TS_SUFFIXES = (".ts", ".tsv", ".tsa", ".m2ts", ".mts")
_MP4_SUFFIXES = (".m4s", ".mp4", ".m4v", ".m4a", ".cmfv", ".cmfa")


class PlaylistError(VqmError, ValueError):
    """A playlist that does not parse; the message says what and on which line."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class ByteRange(_Model):
    """A sub-range of a resource: ``length`` bytes starting at ``offset``."""

    length: int = Field(ge=0)
    offset: int = Field(ge=0)

    @property
    def header(self) -> str:
        """The HTTP ``Range`` header value asking for exactly this sub-range."""
        return f"bytes={self.offset}-{self.offset + self.length - 1}"


class InitSection(_Model):
    """EXT-X-MAP: the fMP4 initialisation segment that every following segment needs."""

    uri: str
    byterange: ByteRange | None = None


class Key(_Model):
    """EXT-X-KEY as it applies to the segments after it (METHOD=NONE is no key at all).

    ``iv`` is the tag's IV; without one, AES-128 takes the segment's media sequence number
    (RFC 8216 section 5.2). Only ``AES-128`` with the ``identity`` key format is something
    ingest can undo; the others (SAMPLE-AES, DRM key formats) are reported, not decrypted.
    """

    method: str
    uri: str = ""
    iv: bytes | None = None
    keyformat: str = "identity"

    @property
    def decryptable(self) -> bool:
        return self.method == "AES-128" and self.keyformat == "identity" and bool(self.uri)


class Cue(_Model):
    """An ad break marker on the segment it precedes: an SCTE-35 splice out, in, or the
    continuation of a break already under way (a follower joining mid-break)."""

    kind: Literal["out", "cont", "in"]
    id: str = ""
    duration: float | None = Field(default=None, description="Planned break length, seconds.")
    scte35: str = Field(default="", description="The raw SCTE-35 payload, as the tag gave it.")
    source: str = Field(default="", description="The tag the cue came from.")


class Rendition(_Model):
    """One EXT-X-MEDIA entry of a master playlist (an alternate audio track, say)."""

    type: str
    group_id: str
    name: str = ""
    language: str = ""
    default: bool = False
    uri: str | None = None  # None: the rendition is muxed into the variant's own segments


class Segment(NamedTuple):
    """One media segment as the playlist lists it.

    A tuple rather than a model, made on access from a row of :class:`SegmentList`: a live
    playlist can list a hundred thousand segments, and pydantic models of that many cost tens
    of milliseconds to free and hundreds to garbage-collect, on whichever thread let go of
    them (the event loop's, often). The parser checks every field.
    """

    seq: int  # media sequence number
    uri: str  # absolute URI (resolved against the playlist URL)
    duration: float  # EXTINF duration, seconds
    title: str = ""
    discontinuity: bool = False  # EXT-X-DISCONTINUITY before it
    discontinuity_seq: int = 0
    program_date_time: datetime | None = None  # wall clock of its first sample
    byterange: ByteRange | None = None
    init: InitSection | None = None
    key: Key | None = None  # EXT-X-KEY in force (None: not encrypted)
    gap: bool = False  # EXT-X-GAP: the origin says there is no media here; never fetched
    cues: tuple[Cue, ...] = ()  # ad break markers just before it

    @property
    def container(self) -> Container:
        """fMP4 when an init section applies, MPEG-TS for ``.ts`` names or no telling suffix."""
        if self.init is not None:
            return "fmp4"
        path = urlsplit(self.uri).path.lower()
        if path.endswith(_MP4_SUFFIXES):
            return "fmp4"
        if path.endswith(_TS_SUFFIXES) or "." not in path.rsplit("/", 1)[-1]:
            return "mpegts"
        return "unknown"


class SegmentList(Sequence[Segment]):
    """A playlist's segments, kept as plain tuples (which the garbage collector stops
    tracking once it has seen them) and made :class:`Segment` when read."""

    def __init__(self, rows: list[tuple[Any, ...]] | None = None) -> None:
        self._rows = rows if rows is not None else []

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> Segment: ...
    @overload
    def __getitem__(self, index: slice) -> list[Segment]: ...
    def __getitem__(self, index: int | slice) -> Segment | list[Segment]:
        if isinstance(index, slice):
            return [Segment._make(row) for row in self._rows[index]]
        return Segment._make(self._rows[index])

    def __iter__(self) -> Iterator[Segment]:
        return (Segment._make(row) for row in self._rows)

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, Sequence) else NotImplemented

    def __repr__(self) -> str:
        return f"SegmentList({len(self)} segments)"


class MediaPlaylist(_Model):
    """A media playlist: the segments of one rendition."""

    url: str
    target_duration: float = Field(gt=0, description="EXT-X-TARGETDURATION, seconds.")
    media_sequence: int = Field(default=0, ge=0)
    discontinuity_sequence: int = Field(default=0, ge=0)
    playlist_type: Literal["EVENT", "VOD"] | None = None
    endlist: bool = Field(default=False, description="EXT-X-ENDLIST: no segment will be added.")
    segments: SegmentList = Field(default_factory=SegmentList)
    skipped: int = Field(
        default=0, ge=0, description="EXT-X-SKIP: segments a delta update left out, oldest first."
    )
    warnings: tuple[str, ...] = Field(default=(), description="What was tolerated, if anything.")

    @property
    def is_vod(self) -> bool:
        """No live edge: the playlist is complete (ENDLIST or PLAYLIST-TYPE:VOD)."""
        return self.endlist or self.playlist_type == "VOD"

    @property
    def first_seq(self) -> int:
        """Sequence number of the oldest segment listed (after those a delta update skipped)."""
        return self.media_sequence + self.skipped

    @property
    def last_seq(self) -> int:
        """Sequence number of the newest segment (``first_seq - 1`` when empty)."""
        return self.first_seq + len(self.segments) - 1


class Variant(_Model):
    """One EXT-X-STREAM-INF entry of a master playlist."""

    uri: str
    bandwidth: int = Field(ge=0)
    codecs: str = ""
    resolution: str = ""
    audio: str = Field(default="", description="GROUP-ID of its alternate audio renditions.")


VariantChoice = Literal["highest", "lowest"] | int


class MasterPlaylist(_Model):
    """A master (multivariant) playlist: variants and renditions to choose from."""

    url: str
    variants: list[Variant]
    renditions: list[Rendition] = Field(default_factory=list)
    warnings: tuple[str, ...] = Field(default=(), description="What was tolerated, if anything.")

    def best_variant(self) -> Variant:
        """The variant with the highest BANDWIDTH: the one closest to what viewers see at best."""
        return max(self.variants, key=lambda v: v.bandwidth)

    def choose(self, choice: VariantChoice = "highest") -> Variant:
        """``highest`` or ``lowest`` BANDWIDTH, or the variant closest to a bandwidth (bits/s;
        of two as close, the higher)."""
        if choice == "highest":
            return self.best_variant()
        if choice == "lowest":
            return min(self.variants, key=lambda v: v.bandwidth)
        return min(self.variants, key=lambda v: (abs(v.bandwidth - int(choice)), -v.bandwidth))

    def audio_for(self, variant: Variant, language: str | None = None) -> Rendition | None:
        """The alternate audio rendition to follow with ``variant``: of its AUDIO group's
        renditions with a URI, the one in ``language`` if given and listed, else the
        DEFAULT=YES one, else the first (None: the sound is muxed into the variant)."""
        group = [
            r
            for r in self.renditions
            if r.type == "AUDIO" and r.group_id == variant.audio and r.uri
        ]
        spoken = [r for r in group if language and r.language.lower() == language.lower()]
        return next(iter(spoken), next((r for r in group if r.default), next(iter(group), None)))

    def labels(self) -> list[str]:
        """A short, stable name per variant, in order, for telling renditions apart in alerts:
        the picture height (``720p``), with the bandwidth when two share it (``720p-3000k``),
        the bandwidth alone without a RESOLUTION (``128k``), the position as a last resort."""
        heights = [_height(v.resolution) for v in self.variants]
        kbps = [f"{round(v.bandwidth / 1000)}k" for v in self.variants]
        labels = [f"{h}p" if h else k for h, k in zip(heights, kbps, strict=True)]
        labels = [
            f"{label}-{k}" if labels.count(label) > 1 and h else label
            for label, h, k in zip(labels, heights, kbps, strict=True)
        ]
        return [
            f"{label}-{i}" if labels.count(label) > 1 else label for i, label in enumerate(labels)
        ]


def _height(resolution: str) -> int | None:
    width, _, height = resolution.lower().partition("x")
    return int(height) if width.isdigit() and height.isdigit() and int(height) > 0 else None


def parse_playlist(
    text: str, url: str, yield_every: int | None = None
) -> MediaPlaylist | MasterPlaylist:
    """Parse playlist ``text`` fetched from ``url``; relative URIs resolve against ``url``.

    ``yield_every`` lines the parser gives up the GIL for a moment: in a worker thread, that
    lets the event loop's thread run between slices of a long parse instead of waiting out
    the interpreter's switch interval again and again.
    """
    return _Parser(url).parse(text, yield_every)


def parse_media_playlist(text: str, url: str) -> MediaPlaylist:
    """Parse ``text`` that must be a media playlist (a master one is a :class:`PlaylistError`)."""
    playlist = parse_playlist(text, url)
    if isinstance(playlist, MasterPlaylist):
        raise PlaylistError(f"{url}: expected a media playlist, got a master playlist")
    return playlist


def parse_attributes(text: str, line_no: int = 0) -> dict[str, str]:
    """Parse an attribute list (``KEY=VALUE,KEY="quoted, value"``); quotes are removed."""
    attributes: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        match = _ATTRIBUTE.match(text, pos)
        if match is None or match.end() == pos:
            raise PlaylistError(f"line {line_no}: malformed attribute list {text!r}")
        value = match.group(2)
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        attributes[match.group(1)] = value
        pos = match.end()
    return attributes


def _loose_attributes(text: str) -> dict[str, str]:
    return {
        name.upper(): value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
        for name, value in _LOOSE_ATTRIBUTE.findall(text)
    }


def parse_byterange(text: str, line_no: int) -> tuple[int, int | None]:
    """``<n>[@<o>]`` as (length, offset or None)."""
    match = _BYTERANGE.fullmatch(text.strip())
    if match is None:
        raise PlaylistError(f"line {line_no}: malformed byte range {text!r}")
    offset = match.group(2)
    return int(match.group(1)), int(offset) if offset is not None else None


class _Parser:
    """One pass over the lines; tags that apply to the next URI are held as pending state."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.directory = urljoin(url, "_")[:-1]  # what a plain relative name is appended to
        self.target: float | None = None
        self.media_sequence = 0
        self.discontinuity_sequence = 0
        self.playlist_type: Literal["EVENT", "VOD"] | None = None
        self.endlist = False
        self.segments: list[tuple[Any, ...]] = []  # rows of Segment fields
        self.variants: list[Variant] = []
        self.init: InitSection | None = None
        # Pending: tags that apply to the next URI line.
        self.extinf: tuple[float, str, int] | None = None
        self.discontinuity = False
        self.pdt: datetime | None = None
        self.byterange: tuple[int, int | None] | None = None
        self.stream_inf: tuple[dict[str, str], int] | None = None
        # Where the previous sub-range of each resource ended, for EXT-X-BYTERANGE without @o.
        self.range_end: dict[str, int] = {}
        self.next_pdt: datetime | None = None
        self.discontinuities = 0
        self.renditions: list[Rendition] = []
        self.warnings: list[str] = []
        self.skipped = 0
        self.key: Key | None = None
        self.key_block = False  # the last tag line was an EXT-X-KEY (several formats, one key)
        self.gap = False
        self.cues: list[Cue] = []

    def parse(self, text: str, yield_every: int | None = None) -> MediaPlaylist | MasterPlaylist:
        lines = text.splitlines()
        start = next((i for i, line in enumerate(lines) if line.strip(" \t\ufeff")), len(lines))
        if start == len(lines) or lines[start].strip(" \t\ufeff") != "#EXTM3U":
            raise PlaylistError(
                f"{self.url}: line {start + 1}: missing #EXTM3U header; not an HLS playlist"
            )
        if start or lines[start] != "#EXTM3U":
            self.warnings.append("a byte order mark, blank lines or spaces before #EXTM3U")
        for line_no, raw in enumerate(lines[start + 1 :], start=start + 2):
            if yield_every and line_no % yield_every == 0:
                time.sleep(0)
            line = raw.strip()
            if not line:
                continue
            try:
                if line.startswith("#"):
                    self._tag(line, line_no)
                else:
                    self._uri(line, line_no)
            except PlaylistError as exc:
                raise PlaylistError(f"{self.url}: {exc}") from None
        return self._finish()

    def _finish(self) -> MediaPlaylist | MasterPlaylist:
        if self.extinf is not None:
            self.warnings.append(
                f"line {self.extinf[2]}: EXTINF without its URI yet (a playlist caught "
                "mid-write); left for the next reload"
            )
        if self.stream_inf is not None:
            self.warnings.append(
                f"line {self.stream_inf[1]}: EXT-X-STREAM-INF without its URI; ignored"
            )
        if self.variants:
            return MasterPlaylist(
                url=self.url,
                variants=self.variants,
                renditions=self.renditions,
                warnings=tuple(self.warnings),
            )
        if self.target is None:
            if not self.segments:
                raise PlaylistError(f"{self.url}: missing EXT-X-TARGETDURATION")
            self.target = float(max(1, math.ceil(max(row[2] for row in self.segments))))
            self.warnings.append(
                f"no EXT-X-TARGETDURATION; following at the longest EXTINF, {self.target:g} s"
            )
        # Every field was checked while parsing; validating 100,000 segments again would cost
        # as much as the parse.
        return MediaPlaylist.model_construct(
            url=self.url,
            target_duration=self.target,
            media_sequence=self.media_sequence,
            discontinuity_sequence=self.discontinuity_sequence,
            playlist_type=self.playlist_type,
            endlist=self.endlist,
            segments=SegmentList(self.segments),
            skipped=self.skipped,
            warnings=tuple(self.warnings),
        )

    def _tag(self, line: str, line_no: int) -> None:
        if not line.startswith("#EXT"):
            return  # a comment
        name, _, value = line.partition(":")
        if name in _MEDIA_ONLY_AFTER_SEGMENTS and self.segments:
            raise PlaylistError(f"line {line_no}: {name} after the first segment")
        handler = _TAGS.get(name)
        if handler is not None:
            try:
                handler(self, value, line_no)
            except PlaylistError as exc:
                if name not in _CUE_TAGS:
                    raise
                self.warnings.append(f"{exc}; cue ignored")
        self.key_block = name == "#EXT-X-KEY"

    def _resolve(self, line: str) -> str:
        if _PLAIN_RELATIVE.fullmatch(line):
            return self.directory + line
        return urljoin(self.url, line)

    def _uri(self, line: str, line_no: int) -> None:
        uri = self._resolve(line)
        if self.stream_inf is not None:
            self._variant(uri, *self.stream_inf)
            self.stream_inf = None
            return
        if self.extinf is None:
            raise PlaylistError(f"line {line_no}: URI {line!r} without a preceding EXTINF")
        if self.variants:
            raise PlaylistError(f"line {line_no}: segment in a master playlist")
        duration, title, _ = self.extinf
        # Carry the wall clock forward by EXTINF, but not across a discontinuity.
        pdt = self.pdt or (None if self.discontinuity else self.next_pdt)
        self.segments.append(
            (
                self.media_sequence + self.skipped + len(self.segments),
                uri,
                duration,
                title,
                self.discontinuity,
                self.discontinuity_sequence + self.discontinuities,
                pdt,
                self._resolve_byterange(uri, line_no),
                self.init,
                self.key,
                self.gap,
                tuple(self.cues),
            )
        )
        self.next_pdt = pdt + timedelta(seconds=duration) if pdt is not None else None
        self.extinf, self.discontinuity, self.pdt, self.byterange = None, False, None, None
        self.gap, self.cues = False, []

    def _resolve_byterange(self, uri: str, line_no: int) -> ByteRange | None:
        if self.byterange is None:
            return None
        length, offset = self.byterange
        if offset is None:
            if uri not in self.range_end:
                raise PlaylistError(
                    f"line {line_no}: EXT-X-BYTERANGE without an offset, but the previous "
                    f"segment is not a sub-range of {uri}"
                )
            offset = self.range_end[uri]
        self.range_end = {uri: offset + length}
        return ByteRange(length=length, offset=offset)

    def _variant(self, uri: str, attributes: dict[str, str], line_no: int) -> None:
        if self.segments:
            raise PlaylistError(f"line {line_no}: EXT-X-STREAM-INF in a media playlist")
        self.variants.append(
            Variant(
                uri=uri,
                bandwidth=self._bandwidth(attributes.get("BANDWIDTH"), line_no),
                codecs=attributes.get("CODECS", ""),
                resolution=attributes.get("RESOLUTION", ""),
                audio=attributes.get("AUDIO", ""),
            )
        )

    def _bandwidth(self, text: str | None, line_no: int) -> int:
        """BANDWIDTH in bits/s; a fractional one is rounded, a missing one is 0 (ranked last)."""
        if text is not None and _DIGITS.fullmatch(text):
            return int(text)
        if text is None:
            self.warnings.append(f"line {line_no}: EXT-X-STREAM-INF without BANDWIDTH")
            return 0
        if _DECIMAL.fullmatch(text) and len(text) <= 32:
            self.warnings.append(f"line {line_no}: fractional BANDWIDTH {text}; rounded")
            return round(float(text))
        raise PlaylistError(
            f"line {line_no}: EXT-X-STREAM-INF needs a numeric BANDWIDTH, got {text!r}"
        )

    # Tag handlers: ``value`` is the text after the first colon.

    def _extinf(self, value: str, line_no: int) -> None:
        duration_text, _, title = value.partition(",")
        self.extinf = (_number(duration_text, "EXTINF duration", line_no), title.strip(), line_no)

    def _target_duration(self, value: str, line_no: int) -> None:
        target = _number(value, "EXT-X-TARGETDURATION", line_no)
        if target <= 0:
            raise PlaylistError(f"line {line_no}: EXT-X-TARGETDURATION must be positive")
        self.target = target

    def _media_sequence(self, value: str, line_no: int) -> None:
        self.media_sequence = _integer(value, "EXT-X-MEDIA-SEQUENCE", line_no)

    def _discontinuity_sequence(self, value: str, line_no: int) -> None:
        self.discontinuity_sequence = _integer(value, "EXT-X-DISCONTINUITY-SEQUENCE", line_no)

    def _discontinuity_tag(self, value: str, line_no: int) -> None:
        self.discontinuity = True
        self.discontinuities += 1

    def _endlist(self, value: str, line_no: int) -> None:
        self.endlist = True

    def _playlist_type(self, value: str, line_no: int) -> None:
        kind = value.strip()
        if kind == "EVENT":
            self.playlist_type = "EVENT"
        elif kind == "VOD":
            self.playlist_type = "VOD"
        else:
            raise PlaylistError(f"line {line_no}: EXT-X-PLAYLIST-TYPE must be EVENT or VOD")

    def _program_date_time(self, value: str, line_no: int) -> None:
        try:
            self.pdt = datetime.fromisoformat(value.strip())
        except ValueError:
            raise PlaylistError(
                f"line {line_no}: EXT-X-PROGRAM-DATE-TIME {value!r} is not an ISO 8601 date"
            ) from None

    def _map(self, value: str, line_no: int) -> None:
        attributes = parse_attributes(value, line_no)
        if "URI" not in attributes:
            raise PlaylistError(f"line {line_no}: EXT-X-MAP without URI")
        byterange = None
        if "BYTERANGE" in attributes:
            length, offset = parse_byterange(attributes["BYTERANGE"], line_no)
            byterange = ByteRange(length=length, offset=offset or 0)
        self.init = InitSection(uri=urljoin(self.url, attributes["URI"]), byterange=byterange)

    def _byterange_tag(self, value: str, line_no: int) -> None:
        self.byterange = parse_byterange(value, line_no)

    def _key(self, value: str, line_no: int) -> None:
        """The key for the segments that follow. Several EXT-X-KEY lines in a row are one key
        in several formats (DRM systems beside a clear key): the ``identity`` one wins."""
        attributes = parse_attributes(value, line_no)
        method = attributes.get("METHOD", "")
        if not method:
            raise PlaylistError(f"line {line_no}: EXT-X-KEY without METHOD")
        key = None
        if method != "NONE":
            iv = attributes.get("IV")
            iv_match = _IV.fullmatch(iv) if iv is not None else None
            if iv is not None and iv_match is None:
                raise PlaylistError(f"line {line_no}: EXT-X-KEY IV {iv!r} is not a 128-bit hex")
            uri = attributes.get("URI", "")
            key = Key(
                method=method,
                uri=self._resolve(uri) if uri else "",
                iv=bytes.fromhex(iv_match.group(1).zfill(32)) if iv_match else None,
                keyformat=attributes.get("KEYFORMAT", "identity"),
            )
        if self.key_block and self.key is not None and self.key.keyformat == "identity":
            return  # a DRM format beside the clear key already read
        self.key = key

    def _gap(self, value: str, line_no: int) -> None:
        self.gap = True

    def _skip(self, value: str, line_no: int) -> None:
        if self.segments:
            raise PlaylistError(f"line {line_no}: EXT-X-SKIP after the first segment")
        skipped = parse_attributes(value, line_no).get("SKIPPED-SEGMENTS", "")
        self.skipped = _integer(skipped, "EXT-X-SKIP SKIPPED-SEGMENTS", line_no)

    def _daterange(self, value: str, line_no: int) -> None:
        attributes = _loose_attributes(value)
        duration_text = attributes.get("DURATION") or attributes.get("PLANNED-DURATION")
        duration = _number(duration_text, "DATERANGE DURATION", line_no) if duration_text else None
        ident = attributes.get("ID", "")
        if "SCTE35-OUT" in attributes:
            self._cue("out", ident, duration, attributes["SCTE35-OUT"], "EXT-X-DATERANGE")
        elif "SCTE35-IN" in attributes:
            self._cue("in", ident, None, attributes["SCTE35-IN"], "EXT-X-DATERANGE")

    def _cue_out(self, value: str, line_no: int) -> None:
        text = value.strip()
        attributes = _loose_attributes(text) if "=" in text else {"DURATION": text}
        duration_text = attributes.get("DURATION", "")
        duration = _number(duration_text, "EXT-X-CUE-OUT", line_no) if duration_text else None
        self._cue("out", attributes.get("ID", ""), duration, "", "EXT-X-CUE-OUT")

    def _cue_out_cont(self, value: str, line_no: int) -> None:
        text = value.strip()
        attributes = _loose_attributes(text) if "=" in text else {}
        duration = attributes.get("DURATION")
        if "/" in text and "=" not in text:  # ElapsedTime/Duration, as some packagers write it
            duration = text.rpartition("/")[2]
        number = _number(duration, "EXT-X-CUE-OUT-CONT", line_no) if duration else None
        self._cue("cont", "", number, attributes.get("SCTE35", ""), "EXT-X-CUE-OUT-CONT")

    def _cue_in(self, value: str, line_no: int) -> None:
        self._cue("in", "", None, "", "EXT-X-CUE-IN")

    def _scte35(self, value: str, line_no: int) -> None:
        """Adobe's form: ``#EXT-X-SCTE35:CUE="<base64>",CUE-OUT=YES|CONT`` or ``CUE-IN=YES``."""
        attributes = _loose_attributes(value)
        out, cue = attributes.get("CUE-OUT", ""), attributes.get("CUE", "")
        duration_text = attributes.get("DURATION", "")
        duration = _number(duration_text, "EXT-X-SCTE35", line_no) if duration_text else None
        ident = attributes.get("ID", "")
        if out == "YES":
            self._cue("out", ident, duration, cue, "EXT-X-SCTE35")
        elif out == "CONT":
            self._cue("cont", ident, duration, cue, "EXT-X-SCTE35")
        elif attributes.get("CUE-IN") == "YES":
            self._cue("in", ident, None, cue, "EXT-X-SCTE35")

    def _cue(
        self,
        kind: Literal["out", "cont", "in"],
        ident: str,
        duration: float | None,
        scte35: str,
        source: str,
    ) -> None:
        if len(self.cues) < 8:  # a segment has one or two; an origin cannot make thousands
            self.cues.append(
                Cue(kind=kind, id=ident[:64], duration=duration, scte35=scte35[:512], source=source)
            )

    def _media(self, value: str, line_no: int) -> None:
        attributes = parse_attributes(value, line_no)
        kind, group = attributes.get("TYPE", ""), attributes.get("GROUP-ID", "")
        if not kind or not group:
            raise PlaylistError(f"line {line_no}: EXT-X-MEDIA needs TYPE and GROUP-ID")
        uri = attributes.get("URI")
        self.renditions.append(
            Rendition(
                type=kind,
                group_id=group,
                name=attributes.get("NAME", ""),
                language=attributes.get("LANGUAGE", ""),
                default=attributes.get("DEFAULT") == "YES",
                uri=self._resolve(uri) if uri else None,
            )
        )

    def _stream_inf(self, value: str, line_no: int) -> None:
        if self.segments or self.extinf is not None:
            raise PlaylistError(f"line {line_no}: EXT-X-STREAM-INF in a media playlist")
        self.stream_inf = (parse_attributes(value, line_no), line_no)


_TAGS = {
    "#EXTINF": _Parser._extinf,
    "#EXT-X-TARGETDURATION": _Parser._target_duration,
    "#EXT-X-MEDIA-SEQUENCE": _Parser._media_sequence,
    "#EXT-X-DISCONTINUITY-SEQUENCE": _Parser._discontinuity_sequence,
    "#EXT-X-DISCONTINUITY": _Parser._discontinuity_tag,
    "#EXT-X-ENDLIST": _Parser._endlist,
    "#EXT-X-PLAYLIST-TYPE": _Parser._playlist_type,
    "#EXT-X-PROGRAM-DATE-TIME": _Parser._program_date_time,
    "#EXT-X-MAP": _Parser._map,
    "#EXT-X-BYTERANGE": _Parser._byterange_tag,
    "#EXT-X-KEY": _Parser._key,
    "#EXT-X-GAP": _Parser._gap,
    "#EXT-X-SKIP": _Parser._skip,
    "#EXT-X-DATERANGE": _Parser._daterange,
    "#EXT-X-CUE-OUT": _Parser._cue_out,
    "#EXT-X-CUE-OUT-CONT": _Parser._cue_out_cont,
    "#EXT-X-CUE-IN": _Parser._cue_in,
    "#EXT-X-SCTE35": _Parser._scte35,
    "#EXT-X-MEDIA": _Parser._media,
    "#EXT-X-STREAM-INF": _Parser._stream_inf,
}
_CUE_TAGS = {
    "#EXT-X-DATERANGE",
    "#EXT-X-CUE-OUT",
    "#EXT-X-CUE-OUT-CONT",
    "#EXT-X-CUE-IN",
    "#EXT-X-SCTE35",
}


def _number(text: str, what: str, line_no: int) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise PlaylistError(f"line {line_no}: {what} {text.strip()!r} is not a number") from None
    if value < 0 or value != value or value == float("inf"):
        raise PlaylistError(f"line {line_no}: {what} {text.strip()!r} is out of range")
    return value


def _integer(text: str, what: str, line_no: int) -> int:
    if not _DIGITS.fullmatch(text.strip()):
        raise PlaylistError(f"line {line_no}: {what} {text.strip()!r} is not a decimal integer")
    return int(text.strip())
