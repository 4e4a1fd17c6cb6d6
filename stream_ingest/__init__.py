"""Ingest: follow live HLS channels, check the stream itself, publish segments on the bus.

- :mod:`stream_ingest.playlist`: RFC 8216 playlist parsing (pure, no I/O).
- :mod:`stream_ingest.fetch`: HTTP (or local file) reads with timeouts, size caps and retries.
- :mod:`stream_ingest.sources.hls`: :class:`HlsFollower`, one live channel to ``vqm.segments`` and
  ``vqm.stream-events``.
- :mod:`stream_ingest.vod`: :func:`fetch_vod_segments`, a playlist read once for ``vqm scan``.
- :mod:`stream_ingest.service`: :class:`IngestService`, one follower per channel, supervised.
"""

from stream_ingest.sources.hls import HlsFollower
from stream_ingest.playlist import PlaylistError, parse_playlist
from stream_ingest.service import IngestService
from stream_ingest.vod import VodError, fetch_vod_segments

__all__ = [
    "HlsFollower",
    "IngestService",
    "PlaylistError",
    "VodError",
    "fetch_vod_segments",
    "parse_playlist",
]
