"""The common part of stream channel URLs (``udp://``, ``rtp://``, ``srt://``): a port and
query options from a known list, each mistake a :class:`UrlOptionError` naming it.

    parts, port, options = split_stream_url(url, ("interface", "source"), "udp://@239.1.1.1:5000")
"""

from __future__ import annotations

from urllib.parse import SplitResult, parse_qsl, urlsplit

from monitor.core.redact import redact_url


class UrlOptionError(ValueError):
    """A stream URL or one of its options that ingest cannot use; the message names it."""


def split_stream_url(
    url: str, known: tuple[str, ...], example: str
) -> tuple[SplitResult, int, dict[str, str]]:
    """The URL's parts, its port and its options; raises :class:`UrlOptionError`."""
    shown = redact_url(url)
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise UrlOptionError(f"{shown}: the port is not a number from 1 to 65535") from None
    if not port:
        raise UrlOptionError(f"{shown}: a port is required ({example})")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise UrlOptionError(f"{shown}: unknown option {unknown[0]!r}; known: {', '.join(known)}")
    return parts, port, options
