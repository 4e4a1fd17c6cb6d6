"""Read a playlist once and yield all its segments: the source behind ``vqm scan URL``.

    async for segment in fetch_vod_segments(url, IngestConfig()):
        ...   # SegmentMessage, in playlist order, payload inline

A live playlist is read once too (its current window), which is what a one-off scan wants.
Unlike the live follower, nothing is skipped: an unreachable playlist, a playlist that does
not parse, or a segment that cannot be fetched raises :class:`VodError` with one clear line,
and so does a segment encrypted with what ingest cannot undo (AES-128 is decrypted; SAMPLE-AES
and DRM are not). Segments the playlist marks EXT-X-GAP are not fetched. A master playlist's
best variant is scanned, with its separate audio rendition joined (:mod:`stream_ingest.renditions`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator

import httpx

from monitor.core.errors import VqmError
from monitor.core.messages import SegmentMessage, now
from monitor.core.redact import redact_url
from stream_ingest.config import IngestConfig
from stream_ingest.fetch import Fetcher, FetchError, load_media_playlist, make_client
from stream_ingest.keys import KeyRing, SegmentKeyError
from stream_ingest.playlist import InitSection, PlaylistError, Segment
from stream_ingest.renditions import AUDIO_SLACK, AudioJoiner, AudioMissing
from stream_ingest.urls import UrlPolicy, is_local_scheme

logger = logging.getLogger(__name__)


class VodError(VqmError, RuntimeError):
    """The playlist or one of its segments could not be read; the message says which and why."""


async def fetch_vod_segments(
    url: str,
    settings: IngestConfig,
    client: httpx.AsyncClient | None = None,
    *,
    channel_id: str = "scan",
    allow_hosts: tuple[str, ...] = (),
) -> AsyncGenerator[SegmentMessage, None]:
    """Yield every segment ``url`` lists, in order, with media time counted from zero.

    A URL is held to the channel URL policy (its own host, or ``allow_hosts``); a local
    playlist (a path given on the command line) may name local regular files.
    """
    own_client = client is None
    http = client or make_client(settings)
    policy = (
        UrlPolicy.local_file() if is_local_scheme(url) else UrlPolicy.for_channel(url, allow_hosts)
    )
    try:
        fetcher = Fetcher(http, settings, policy)
        try:
            playlist, variant, audio = await load_media_playlist(fetcher, url)
        except FetchError as exc:
            raise VodError(f"cannot read playlist {exc.url}: {exc.detail}") from exc
        except PlaylistError as exc:
            raise VodError(f"not a usable HLS playlist: {exc}") from exc
        codecs = variant.codecs if variant is not None else ""
        logger.info("%s: %d segments to scan", playlist.url, len(playlist.segments))
        media_time = 0.0
        init_cache: dict[InitSection, bytes] = {}
        keys = KeyRing(fetcher)
        joiner = None
        if audio is not None and audio.uri is not None:
            joiner = AudioJoiner(fetcher, keys, audio.uri, cap=settings.max_segment_bytes)
            logger.info("%s: joining the audio rendition %s", playlist.url, audio.uri)
        for segment in playlist.segments:
            if segment.gap:
                logger.info("%s: segment %d is EXT-X-GAP; skipped", playlist.url, segment.seq)
                media_time += segment.duration
                continue
            payload = await _payload(fetcher, segment, settings.max_segment_bytes, init_cache)
            if segment.key is not None:
                try:
                    payload = await keys.decrypt(payload, segment.key, segment.seq)
                except SegmentKeyError as exc:
                    raise VodError(f"cannot decrypt segment {segment.seq}: {exc.detail}") from exc
            beside = b""
            if joiner is not None:
                payload, beside = await _with_audio(joiner, segment, payload)
            yield SegmentMessage(
                channel_id=channel_id,
                seq=segment.seq,
                uri=redact_url(segment.uri),
                media_start=media_time,
                duration=segment.duration,
                fetched_at=now(),
                discontinuity=segment.discontinuity,
                container=segment.container,
                codecs=codecs,
                payload=payload,
                audio_payload=beside,
            )
            media_time += segment.duration
    finally:
        if own_client:
            await http.aclose()


async def _with_audio(joiner: AudioJoiner, segment: Segment, payload: bytes) -> tuple[bytes, bytes]:
    """The segment with its separate audio joined; a scan goes on without the sound where
    it cannot be had (the pictures are still worth checking), saying so."""
    try:
        joined = await joiner.join(segment, payload)
    except AudioMissing as exc:
        logger.warning("segment %d: %s; scanned without its audio", segment.seq, exc)
        return payload, b""
    if joined.audio_missing > AUDIO_SLACK:
        why = f" ({joined.problem})" if joined.problem else ""
        logger.warning("segment %d: %.2f s without audio%s", segment.seq, joined.audio_missing, why)
    return joined.payload, joined.beside


async def _payload(
    fetcher: Fetcher, segment: Segment, cap: int, init_cache: dict[InitSection, bytes]
) -> bytes:
    try:
        init = b""
        if segment.init is not None:
            if segment.init not in init_cache:
                init_cache[segment.init] = await fetcher.get(
                    segment.init.uri, cap=cap, byterange=segment.init.byterange
                )
            init = init_cache[segment.init]
        body = await fetcher.get(segment.uri, cap=cap - len(init), byterange=segment.byterange)
    except FetchError as exc:
        raise VodError(f"cannot read segment {segment.seq} ({exc.url}): {exc.detail}") from exc
    return init + body
