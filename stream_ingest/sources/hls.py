"""Follow one live HLS channel: reload its playlist, fetch each new segment once, publish it.

    follower = HlsFollower(channel, SourceContext(settings, bus, topics, metrics))
    await follower.run(stop)    # returns when ``stop`` is set, or at the end of a VOD playlist

The follower reloads the playlist as RFC 8216 section 6.3.4 asks (one target duration after a
load that found a change, half of one after a load that did not, measured from the start of the
load), starts right after the last segment published for the channel when one is recorded
(``context.positions``: a hand-over or a take-over after a crash), else at the live edge or at
the first listed segment (``settings.start``; a complete VOD playlist always starts at its
first), and publishes one :class:`SegmentMessage` per media sequence number. Everything it
notices about the stream is a :class:`StreamEvent` on ``topics.stream_events``, a count in
``vqm_ingest_errors{kind}`` and one log line:

=================  ==========================================================================
kind               when
=================  ==========================================================================
http_error         an HTTP error status (``status`` set), a refused or broken connection
timeout            no complete answer within ``request_timeout`` (after retries)
playlist_parse     the playlist does not parse (``detail`` names the line)
stale_playlist     playlist unchanged for ``stale_after_targets`` target durations; once per
                   episode, followed by ``recovered`` when it moves again
discontinuity      EXT-X-DISCONTINUITY before a followed segment, or the media sequence going
                   back (origin restart)
gap                segments that left the window before they were fetched (``detail`` names
                   the range, ``seq`` its first), also those a resuming follower finds gone
oversize           a segment over ``max_segment_bytes``; it is not published
url_refused        a variant, segment, init or redirect URI the channel's URL policy refuses
                   (another host, a local file, a metadata address); it is not fetched
target_duration    EXT-X-TARGETDURATION outside ``min/max_target_duration``; followed clamped
encryption         a segment encrypted with what ingest cannot undo (SAMPLE-AES, a DRM key
                   format), or whose AES-128 key is not 16 bytes or does not decrypt it; the
                   segment is not published (a key that cannot be fetched is an ``http_error``,
                   ``timeout`` or ``url_refused`` naming the key URI)
recovered          the playlist moves again after being stale (not counted as an error)
origin_gap         EXT-X-GAP: the origin declares no media for a run of segments (``seq`` its
                   first); not fetched, not an error
ad_break_start     an SCTE-35 splice out on a followed segment (EXT-X-CUE-OUT, EXT-X-DATERANGE
                   SCTE35-OUT, EXT-X-SCTE35), or CUE-OUT-CONT when joining mid-break;
                   ``media_time`` is the segment's media start; not an error
ad_break_end       the splice back in (CUE-IN, SCTE35-IN), or the break's planned duration
                   (plus a target duration) passing without one; not an error
audio_missing      the variant's separate audio rendition gave no sound for a segment (its
                   audio segment failed or is not listed yet, or more than ``AUDIO_SLACK`` of
                   the pictures lack sound), or cannot be joined (a video neither MPEG-TS
                   nor fMP4: said once); the segment is published with what sound there is
=================  ==========================================================================

AES-128 segments are decrypted before they are published (:mod:`stream_ingest.keys`); a
delta update (EXT-X-SKIP) is numbered after the segments it skips; LL-HLS parts are ignored
(full segments are followed). A master playlist's variant is the channel's ``variant`` choice;
``variant: all`` runs one follower per variant, each publishing as the sub-channel
``<id>@<label>`` (:meth:`MasterPlaylist.labels`) with a position of its own. A variant whose
AUDIO group has a rendition with a URI has that rendition's sound joined to its segments
(:mod:`stream_ingest.renditions`).

A failed segment is reported and skipped; a failed playlist load is reported and retried at the
next reload. Nothing a server sends can stop the follower: unexpected exceptions are caught at
the loop boundary, logged, counted as ``internal`` and the loop goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging

import httpx

from monitor.core.channels import ChannelConfig
from monitor.core.messages import (
    INFORMATIONAL_KINDS,
    SegmentMessage,
    StreamEvent,
    StreamEventKind,
    encode_message,
    now,
)
from monitor.core.redact import redact, redact_url
from monitor.core.retry import RetryPolicy
from stream_ingest.fetch import (
    Fetcher,
    FetchError,
    PlaylistReader,
    choose_variant,
    make_client,
)
from stream_ingest.keys import KeyRing, SegmentKeyError
from stream_ingest.playlist import (
    Cue,
    InitSection,
    MasterPlaylist,
    MediaPlaylist,
    PlaylistError,
    Segment,
    Variant,
)
from stream_ingest.positions import Position
from stream_ingest.renditions import AUDIO_SLACK, AudioJoiner, AudioMissing
from stream_ingest.sources.base import Source, SourceContext
from stream_ingest.sources.registry import register
from stream_ingest.urls import UrlPolicy

logger = logging.getLogger(__name__)

# Reload delay before any target duration is known (the first load failed).
_FIRST_RETRY_DELAY = 1.0
# The channel counts as down after this many target durations without a segment while failing.
_DOWN_AFTER_TARGETS = 3.0
# Statuses after which a chosen variant is dropped and the master playlist read again.
_GONE = {404, 410}
_WARN = set(StreamEventKind) - {StreamEventKind.DISCONTINUITY} - INFORMATIONAL_KINDS
# A break with neither an end cue nor a planned duration is taken to end after this long.
MAX_AD_BREAK_SECONDS = 600.0
# A variant's follower that crashed (a bug) restarts after this, doubling up to the cap.
_VARIANT_RESTART = RetryPolicy(initial=1.0, cap=30.0)


@register
class HlsFollower(Source):
    """Follows one channel's playlist until stopped (or until a VOD playlist ends).

    ``http`` and ``https`` playlists; what they may list is the channel's URL policy
    (:mod:`stream_ingest.urls`).
    """

    schemes = ("http", "https")

    def __init__(
        self,
        channel: ChannelConfig,
        context: SourceContext,
        variant: tuple[MasterPlaylist, Variant] | None = None,
    ) -> None:
        """``variant``: follow this one variant of a master playlist already read (the
        sub-channel of a ``variant: all`` channel); None: the channel URL says what."""
        super().__init__(channel, context)
        self.variant = variant
        self.settings = context.settings
        self._bus = context.bus
        self._topics = context.topics
        self._metrics = context.metrics
        self._client = context.http
        self._fetcher: Fetcher | None = None
        self._shared_client: httpx.AsyncClient | None = None
        self._playlists: PlaylistReader | None = None
        self._media_url: str | None = None  # set once a master playlist chose a variant
        self._codecs = ""
        self._target: float | None = None  # the playlist's target duration, clamped
        self._announced_target: float | None = None
        self._next_seq: int | None = None  # next media sequence number to fetch
        self._media_time = 0.0  # running sum of EXTINF since the first followed segment
        self._mark_discontinuity = False  # the next segment follows a gap or a restart
        self._init_cache: tuple[InitSection, bytes] | None = None
        self._signature: tuple[object, ...] | None = None
        self._changed_at = 0.0
        self._stale = False
        self._last_good = 0.0  # last delivered segment (or start), loop clock
        self._failing = False  # a request failed since the last delivered segment
        self._down = False
        self.finished = False  # a VOD playlist was followed to its end
        self._keys: KeyRing | None = None
        self._key_problem: str | None = None  # the last encryption problem reported
        self._in_gap = False  # the previous segment was an EXT-X-GAP
        self._ad_break: tuple[float, float] | None = None  # (media start, planned end)
        self._audio: AudioJoiner | None = None  # the separate audio rendition joined

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the channel until ``stop`` is set or a VOD playlist ends.

        The work runs in a child task that is cancelled the moment ``stop`` is set, so even a
        request in flight (up to ``request_timeout``) does not delay shutdown.
        """
        client = self._client or make_client(self.settings)
        self._shared_client = client  # what a ``variant: all`` channel's followers share
        policy = UrlPolicy.for_channel(self.channel.url, self.channel.allow_hosts)
        self._fetcher = Fetcher(client, self.settings, policy)
        self._playlists = PlaylistReader(self._fetcher)
        self._keys = KeyRing(self._fetcher)
        if self.variant is not None:
            self._use_variant(*self.variant)
        follow = asyncio.create_task(self._follow(), name=f"hls-follow-{self.channel.id}")
        stopped = asyncio.create_task(stop.wait(), name=f"hls-stop-{self.channel.id}")
        try:
            await asyncio.wait({follow, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            follow.cancel()
            stopped.cancel()
            await asyncio.gather(follow, stopped, return_exceptions=True)
            if self._client is None:
                await client.aclose()
        error = None if follow.cancelled() else follow.exception()
        if error is not None:
            raise error  # only a bug in the follower itself gets here

    async def _follow(self) -> None:
        loop = asyncio.get_running_loop()
        self._last_good = self._changed_at = loop.time()
        self._metrics.ingest_up.labels(channel=self.channel.id).set(0)
        logger.info("channel %s: following %s", self.channel.id, self.channel.url)
        while not self.finished:
            started = loop.time()
            try:
                changed = await self._poll()
            except Exception:
                logger.exception("channel %s: unexpected error; carrying on", self.channel.id)
                self._metrics.ingest_errors.labels(channel=self.channel.id, kind="internal").inc()
                changed = False
            self._check_down()
            if self.finished:
                logger.info("channel %s: playlist ended; done", self.channel.id)
                return
            await asyncio.sleep(max(0.0, self._reload_delay(changed) - (loop.time() - started)))

    def _reload_delay(self, changed: bool) -> float:
        """RFC 8216 6.3.4: a target duration after a change, half of one after no change."""
        if self._target is None:
            return _FIRST_RETRY_DELAY
        return self._target if changed else self._target / 2

    async def _poll(self) -> bool:
        """Load the playlist once and ingest its new segments; True when it had changed."""
        try:
            playlist = await self._load()
        except FetchError as exc:
            self._failing = True
            if exc.status in _GONE and self._media_url is not None and self.variant is None:
                self._media_url = None  # the variant went away: choose again from the master
            await self._report_fetch(exc)
            return False
        except PlaylistError as exc:
            self._failing = True
            await self._report(StreamEventKind.PLAYLIST_PARSE, str(exc), url=self._playlist_url)
            return False
        if isinstance(playlist, MasterPlaylist):
            await self._follow_every_variant(playlist)
            self.finished = True
            return False
        self._target = await self._clamped_target(playlist)
        changed = await self._observe(playlist)
        await self._ingest_new(playlist)
        if playlist.endlist and (self._next_seq is None or self._next_seq > playlist.last_seq):
            self.finished = True
        return changed

    @property
    def _playlist_url(self) -> str:
        return self._media_url or self.channel.url

    async def _load(self) -> MediaPlaylist | MasterPlaylist:
        """Fetch and parse the media playlist, choosing a variant the first time a master
        shows; a master playlist is returned only to a ``variant: all`` channel."""
        assert self._playlists is not None
        url = self._playlist_url
        playlist = await self._playlists.read(url)
        if isinstance(playlist, MasterPlaylist):
            if self._media_url is not None:
                raise PlaylistError(f"{url}: variant playlist is itself a master playlist")
            if self.channel.variant == "all":
                return playlist
            self._use_variant(playlist, choose_variant(playlist, self.channel.variant))
            return await self._load()
        return playlist

    def _use_variant(self, master: MasterPlaylist, variant: Variant) -> None:
        """Follow ``variant``, with its separate audio rendition (if it has one) joined."""
        self._media_url, self._codecs = variant.uri, variant.codecs
        audio = master.audio_for(variant, self.channel.audio_language)
        if audio is None or audio.uri is None:
            self._audio = None  # the sound is muxed into the variant's own segments
            return
        if self._audio is not None and self._audio.url == audio.uri:
            return  # the same rendition, chosen again after the variant went away
        assert self._fetcher is not None and self._keys is not None
        self._audio = AudioJoiner(
            self._fetcher, self._keys, audio.uri, cap=self.settings.max_segment_bytes
        )
        logger.info(
            "channel %s: joining the audio rendition %r (%s) to the video",
            self.channel.id,
            audio.name,
            redact_url(audio.uri),
        )

    async def _follow_every_variant(self, master: MasterPlaylist) -> None:
        """``variant: all``: one follower per variant, each publishing as a sub-channel
        (``news@720p``) with its own position, until they all end (or this is cancelled)."""
        context = dataclasses.replace(self.context, http=self._shared_client)
        with contextlib.suppress(KeyError):  # the renditions are up or down, not the channel
            self._metrics.ingest_up.remove(self.channel.id)
        labels = master.labels()
        logger.info(
            "channel %s: following all %d variants as %s",
            self.channel.id,
            len(labels),
            ", ".join(labels),
        )
        followers = [
            HlsFollower(self.channel.rendition(label), context, (master, variant))
            for label, variant in zip(labels, master.variants, strict=True)
        ]
        await asyncio.gather(*(_keep_running(f) for f in followers))

    async def _clamped_target(self, playlist: MediaPlaylist) -> float:
        """The target duration the follower paces itself by: the playlist's, kept within
        ``[min_target_duration, max_target_duration]``. An origin announcing 0.0001 s or a day
        would otherwise make it reload hundreds of times a second, or once in five minutes;
        the first reload that shows a new out-of-range value is a ``target_duration`` event."""
        announced = playlist.target_duration
        low, high = self.settings.min_target_duration, self.settings.max_target_duration
        target = min(max(announced, low), high)
        if target != announced and announced != self._announced_target:
            await self._report(
                StreamEventKind.TARGET_DURATION,
                f"EXT-X-TARGETDURATION {announced:g} s is outside {low:g}-{high:g} s; "
                f"following at {target:g} s",
                url=playlist.url,
            )
        self._announced_target = announced
        return target

    # Staleness

    async def _observe(self, playlist: MediaPlaylist) -> bool:
        """Note whether the playlist moved; raise ``stale_playlist`` / ``recovered`` on edges."""
        clock = asyncio.get_running_loop().time()
        # What moves when a live playlist moves; cheap even for a very long playlist (a tuple
        # of every URI cost tens of milliseconds of event loop at 100,000 entries).
        segments = playlist.segments
        signature = (
            playlist.media_sequence,
            playlist.endlist,
            len(segments),
            segments[-1].uri if segments else None,
        )
        if signature != self._signature:
            self._signature, self._changed_at = signature, clock
            if self._stale:
                self._stale = False
                await self._report(
                    StreamEventKind.RECOVERED,
                    f"playlist moving again at media sequence {playlist.media_sequence}",
                    url=playlist.url,
                )
            return True
        unchanged_for = clock - self._changed_at
        limit = self.settings.stale_after_targets * (self._target or playlist.target_duration)
        if not self._stale and not playlist.endlist and unchanged_for >= limit:
            self._stale = True
            self._metrics.ingest_up.labels(channel=self.channel.id).set(0)
            await self._report(
                StreamEventKind.STALE_PLAYLIST,
                f"media sequence {playlist.media_sequence} and segment list unchanged for "
                f"{unchanged_for:.1f} s ({self.settings.stale_after_targets:g} target durations)",
                url=playlist.url,
            )
        return False

    # Segments

    async def _ingest_new(self, playlist: MediaPlaylist) -> None:
        """Fetch and publish every segment not yet followed, in media sequence order."""
        if not playlist.segments:
            return
        if self._next_seq is None and not await self._resume():
            self._next_seq = self._start_seq(playlist)
        else:
            await self._check_window(playlist)  # also where a resumed position is checked
        assert self._next_seq is not None
        first_new = max(0, self._next_seq - playlist.first_seq)
        for segment in playlist.segments[first_new:]:
            media_start = self._media_time
            # Advance first: a segment that fails (or crashes) is never fetched twice.
            self._next_seq = segment.seq + 1
            self._media_time += segment.duration
            await self._ingest(segment, media_start)

    async def _resume(self) -> bool:
        """Carry on after the last segment published for this channel (by this follower's
        predecessor: a hand-over, a crashed worker), if one is recorded; True if so.

        The window check that follows fetches from there while it is still listed, and
        reports a gap and starts at the oldest listed when the playlist has moved past it.
        """
        positions = self.context.positions
        position = None if positions is None else await positions.load(self.channel.id)
        if position is None:
            return False
        self._next_seq, self._media_time = position.seq + 1, position.media_end
        logger.info(
            "channel %s: resuming after media sequence %d, published at %.3f",
            self.channel.id,
            position.seq,
            position.published_at,
        )
        return True

    def _start_seq(self, playlist: MediaPlaylist) -> int:
        first = self.settings.start == "first" or playlist.is_vod
        seq = playlist.first_seq if first else playlist.last_seq
        logger.info(
            "channel %s: starting at media sequence %d (%s)",
            self.channel.id,
            seq,
            "first listed" if first else "live edge",
        )
        return seq

    async def _check_window(self, playlist: MediaPlaylist) -> None:
        """Report segments that left the window unfetched, and an origin that restarted."""
        assert self._next_seq is not None
        window = len(playlist.segments)
        if playlist.last_seq + window < self._next_seq - 1:
            # No overlap with anything we have seen: the sequence restarted. A slightly older
            # window is just an out-of-date cache copy and is ignored.
            await self._report(
                StreamEventKind.DISCONTINUITY,
                f"media sequence went back from {self._next_seq - 1} to {playlist.last_seq}; "
                "following from there",
                seq=playlist.first_seq,
                url=playlist.url,
            )
            self._next_seq = self._start_seq(playlist)
            self._mark_discontinuity = True
            return
        first = playlist.first_seq  # after the segments a delta update skipped
        if first <= self._next_seq:
            return
        missing = range(self._next_seq, first)
        # Their EXTINF was never seen: keep the timeline close to wall clock with a target each.
        self._media_time += len(missing) * (self._target or playlist.target_duration)
        await self._report(
            StreamEventKind.GAP,
            f"segments {missing.start}-{missing.stop - 1} ({len(missing)}) left the playlist "
            "before they were fetched",
            seq=missing.start,
            url=playlist.url,
        )
        self._next_seq = first
        self._mark_discontinuity = True

    async def _ingest(self, segment: Segment, media_start: float) -> None:
        """Fetch one segment and publish it, or report why not."""
        if segment.discontinuity:
            await self._report(
                StreamEventKind.DISCONTINUITY,
                f"EXT-X-DISCONTINUITY before segment {segment.seq} "
                f"(discontinuity sequence {segment.discontinuity_seq})",
                seq=segment.seq,
                url=segment.uri,
            )
        await self._ad_cues(segment, media_start)
        if segment.gap:
            await self._origin_gap(segment)
            return
        self._in_gap = False
        try:
            payload = await self._payload(segment)
            if segment.key is not None:
                assert self._keys is not None
                payload = await self._keys.decrypt(payload, segment.key, segment.seq)
        except FetchError as exc:
            if exc.kind != StreamEventKind.OVERSIZE:
                self._failing = True
            await self._report_fetch(exc, seq=segment.seq)
            return
        except SegmentKeyError as exc:
            await self._report_key(exc, segment)
            return
        self._key_problem = None
        beside = b""
        if self._audio is not None:
            payload, beside = await self._join_audio(segment, payload, media_start)
        message = SegmentMessage(
            channel_id=self.channel.id,
            seq=segment.seq,
            uri=redact_url(segment.uri),
            media_start=media_start,
            duration=segment.duration,
            fetched_at=now(),
            discontinuity=segment.discontinuity or self._mark_discontinuity,
            container=segment.container,
            codecs=self._codecs,
            payload=payload,
            audio_payload=beside,
        )
        await self._bus.publish(
            self._topics.segments, key=self.channel.id, value=encode_message(message)
        )
        self._mark_discontinuity = False
        self._delivered(message)
        await self._record(message)

    async def _join_audio(
        self, segment: Segment, payload: bytes, media_start: float
    ) -> tuple[bytes, bytes]:
        """The segment with its separate audio joined (MPEG-TS) or to carry beside it (fMP4:
        the second bytes); the video alone, and an ``audio_missing`` event, when the audio
        for its time cannot be had."""
        assert self._audio is not None
        beside = b""
        if segment.container == "unknown":
            self._audio = None  # neither MPEG-TS nor fMP4: say so once, follow the video
            detail = "the video is neither MPEG-TS nor fMP4, so its separate audio cannot be "
            detail += "joined; the channel is followed without it"
        else:
            try:
                joined = await self._audio.join(segment, payload)
            except AudioMissing as exc:
                detail = f"{exc}; published without it"
            else:
                if joined.audio_missing <= AUDIO_SLACK:
                    return joined.payload, joined.beside
                payload, beside = joined.payload, joined.beside
                why = f" ({joined.problem})" if joined.problem else ""
                detail = (
                    f"{joined.audio_missing:.2f} s of its {segment.duration:.2f} s without "
                    f"audio{why}; published with the sound there is"
                )
        await self._report(
            StreamEventKind.AUDIO_MISSING,
            f"segment {segment.seq}: {detail}",
            seq=segment.seq,
            url=self._audio.url if self._audio is not None else segment.uri,
            media_time=media_start,
        )
        return payload, beside

    async def _origin_gap(self, segment: Segment) -> None:
        """EXT-X-GAP: nothing to fetch; one event per run of gap segments."""
        self._mark_discontinuity = True
        if self._in_gap:
            return
        self._in_gap = True
        await self._report(
            StreamEventKind.ORIGIN_GAP,
            f"the origin declares no media from segment {segment.seq} (EXT-X-GAP); not fetched",
            seq=segment.seq,
            url=segment.uri,
        )

    async def _report_key(self, exc: SegmentKeyError, segment: Segment) -> None:
        """One event per distinct problem (a channel under SAMPLE-AES would otherwise report
        every segment); a key that cannot be fetched counts as the origin failing."""
        if exc.kind != StreamEventKind.ENCRYPTION:
            self._failing = True
        if exc.detail == self._key_problem:
            logger.debug("channel %s: seq %d: %s", self.channel.id, segment.seq, exc.detail)
            return
        self._key_problem = exc.detail
        await self._report(exc.kind, exc.detail, seq=segment.seq, url=exc.url or segment.uri)

    async def _ad_cues(self, segment: Segment, media_start: float) -> None:
        """Ad breaks as the segments' cues say, reported before the segment is published (so
        alerting knows of the break before it hears of the segment's pictures)."""
        if self._ad_break is not None and media_start >= self._ad_break[1]:
            await self._end_ad_break(segment, media_start, "its planned duration passed")
        for cue in segment.cues:
            if cue.kind == "in" and self._ad_break is not None:
                await self._end_ad_break(segment, media_start, cue.source)
            elif cue.kind in ("out", "cont") and self._ad_break is None:
                await self._start_ad_break(segment, media_start, cue)

    async def _start_ad_break(self, segment: Segment, media_start: float, cue: Cue) -> None:
        target = self._target or _FIRST_RETRY_DELAY
        length = cue.duration if cue.duration is not None else MAX_AD_BREAK_SECONDS
        self._ad_break = (media_start, media_start + length + target)
        planned = f", {cue.duration:g} s planned" if cue.duration is not None else ""
        ident = f" {cue.id!r}" if cue.id else ""
        scte35 = f"; SCTE-35 {cue.scte35}" if cue.scte35 else ""
        joined = " (joined under way)" if cue.kind == "cont" else ""
        await self._report(
            StreamEventKind.AD_BREAK_START,
            f"ad break{ident} from segment {segment.seq}{planned}{joined} ({cue.source}{scte35})",
            seq=segment.seq,
            url=segment.uri,
            media_time=media_start,
        )

    async def _end_ad_break(self, segment: Segment, media_start: float, why: str) -> None:
        assert self._ad_break is not None
        started = self._ad_break[0]
        self._ad_break = None
        await self._report(
            StreamEventKind.AD_BREAK_END,
            f"ad break over at segment {segment.seq} after {media_start - started:.1f} s ({why})",
            seq=segment.seq,
            url=segment.uri,
            media_time=media_start,
        )

    async def _record(self, message: SegmentMessage) -> None:
        """Keep the published position for whoever follows the channel next."""
        if self.context.positions is None:
            return
        position = Position(
            seq=message.seq,
            media_end=message.media_start + message.duration,
            published_at=message.fetched_at,
        )
        await self.context.positions.save(self.channel.id, position)

    async def _payload(self, segment: Segment) -> bytes:
        """The segment's bytes, with its fMP4 init section in front when it has one."""
        assert self._fetcher is not None
        cap = self.settings.max_segment_bytes
        init = await self._init_bytes(segment.init, cap) if segment.init is not None else b""
        body = await self._fetcher.get(
            segment.uri, cap=cap - len(init), byterange=segment.byterange
        )
        return init + body

    async def _init_bytes(self, init: InitSection, cap: int) -> bytes:
        """EXT-X-MAP bytes, fetched once per distinct init section."""
        assert self._fetcher is not None
        if self._init_cache is not None and self._init_cache[0] == init:
            return self._init_cache[1]
        data = await self._fetcher.get(init.uri, cap=cap, byterange=init.byterange)
        self._init_cache = (init, data)
        return data

    def _delivered(self, message: SegmentMessage) -> None:
        channel = self.channel.id
        self._metrics.segments_ingested.labels(channel=channel).inc()
        self._metrics.ingest_up.labels(channel=channel).set(1)
        self._metrics.last_segment_timestamp.labels(channel=channel).set(message.fetched_at)
        self._last_good = asyncio.get_running_loop().time()
        self._failing = False
        if self._down:
            logger.info("channel %s: delivering segments again", channel)
        self._down = False
        logger.debug("channel %s: published segment %d", channel, message.seq)

    def _check_down(self) -> None:
        """Mark the channel down when requests fail and nothing came for 3 target durations."""
        target = self._target or _FIRST_RETRY_DELAY
        silent_for = asyncio.get_running_loop().time() - self._last_good
        if self._down or not self._failing or silent_for <= _DOWN_AFTER_TARGETS * target:
            return
        self._down = True
        self._metrics.ingest_up.labels(channel=self.channel.id).set(0)
        logger.warning(
            "channel %s: down: origin failing and no segment for %.1f s",
            self.channel.id,
            silent_for,
        )

    # Reporting

    async def _report_fetch(self, exc: FetchError, seq: int | None = None) -> None:
        await self._report(exc.kind, exc.detail, seq=seq, url=exc.url, status=exc.status)

    async def _report(
        self,
        kind: StreamEventKind,
        detail: str,
        *,
        seq: int | None = None,
        url: str | None = None,
        status: int | None = None,
        media_time: float | None = None,
    ) -> None:
        """One stream finding: a log line, a metric (errors only) and an event on the bus."""
        channel = self.channel.id
        where = f" seq {seq}" if seq is not None else ""
        # Discontinuities are routine (ad breaks), recoveries good news, and gaps and breaks
        # the origin declares are what it says: info, not warning.
        level = logging.WARNING if kind in _WARN else logging.INFO
        logger.log(
            level,
            "channel %s: %s%s: %s (%s)",
            channel,
            kind.value,
            where,
            detail,
            redact_url(url or ""),
        )
        if kind not in INFORMATIONAL_KINDS:
            self._metrics.ingest_errors.labels(channel=channel, kind=kind.value).inc()
        event = StreamEvent(
            channel_id=channel,
            kind=kind,
            detail=redact(detail),
            seq=seq,
            url=redact_url(url) if url else None,
            status=status,
            media_time=media_time,
        )
        await self._bus.publish(
            self._topics.stream_events, key=channel, value=encode_message(event)
        )


async def _keep_running(follower: HlsFollower) -> None:
    """Run one variant's follower; a crash (a bug) is logged, counted and restarted after a
    back-off, so one broken rendition does not stop the channel's others."""
    failures = 0
    while True:
        try:
            await follower.run(asyncio.Event())  # stopped by cancelling, with its parent
            return
        except Exception:
            failures += 1
            delay = _VARIANT_RESTART.delay(failures)
            logger.exception("channel %s: follower crashed; restarting", follower.channel.id)
            follower.context.metrics.ingest_errors.labels(
                channel=follower.channel.id, kind="internal"
            ).inc()
            await asyncio.sleep(delay)
            follower = HlsFollower(follower.channel, follower.context, follower.variant)
