"""The one registry of ingest sources, keyed by URL scheme.

    source_class("https://cdn.example/live.m3u8")   # -> HlsFollower
    source_class("udp://@239.1.1.1:5000")           # -> UdpSource (also rtp://; srt:// SrtSource)
    source_class("gopher://venue/live")             # ValueError naming the known schemes

A channel URL without a scheme is a local path (a playlist on disk, for testing) and goes to
the source registered for ``file``.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from monitor.core.plugins import Registry
from stream_ingest.sources.base import Source


def _schemes(cls: type[Source]) -> Iterable[str]:
    return cls.schemes


SOURCES: Registry[type[Source]] = Registry(
    "source scheme", "stream_ingest.sources", infrastructure={"base"}, keys=_schemes
)
register = SOURCES.register


def scheme_of(url: str) -> str:
    """The URL's scheme, lower case; ``file`` for a plain path (a one-letter scheme is a
    Windows drive, not a scheme)."""
    scheme = urlsplit(url).scheme.lower()
    return scheme if len(scheme) > 1 else "file"


def source_class(url: str) -> type[Source]:
    """The source that reads ``url``; an unknown scheme is an error naming the known ones."""
    return SOURCES.get(scheme_of(url))
