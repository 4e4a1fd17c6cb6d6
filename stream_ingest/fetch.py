"""Fetching playlists and segments: a total timeout, a size cap and retries with back-off.

Every failure becomes a :class:`FetchError` whose ``kind`` is the stream event kind to report,
so callers never have to know httpx's exception tree::

    fetcher = Fetcher(client, settings)
    try:
        data = await fetcher.get(url, cap=settings.max_segment_bytes)
    except FetchError as exc:
        ...  # exc.kind, exc.status, exc.detail

A URL without an ``http(s)://`` scheme is read as a local file, so a playlist written to disk
(tests, ``vqm scan`` of a packaged asset) goes through the same path.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from monitor.core.errors import VqmError
from monitor.core.messages import StreamEventKind
from stream_ingest.config import IngestConfig
from stream_ingest.playlist import (
    ByteRange,
    MasterPlaylist,
    MediaPlaylist,
    Variant,
    parse_media_playlist,
    parse_playlist,
)

logger = logging.getLogger(__name__)

MAX_PLAYLIST_BYTES = 4 * 1024 * 1024
# 4xx statuses that trying again can fix: not yet published (404), timeouts and throttling.
_RETRIABLE_CLIENT_STATUSES = {404, 408, 425, 429}


class FetchError(VqmError):
    """A request that failed for good (after retries, or at once when retrying cannot help)."""

    def __init__(
        self,
        kind: StreamEventKind,
        url: str,
        detail: str,
        status: int | None = None,
        retriable: bool = True,
    ) -> None:
        super().__init__(f"{url}: {detail}", retriable=retriable)
        self.kind = kind
        self.url = url
        self.detail = detail
        self.status = status


def make_client(settings: IngestConfig) -> httpx.AsyncClient:
    """The client ingest uses when it is not handed one: per-operation timeouts, redirects."""
    return httpx.AsyncClient(timeout=settings.request_timeout, follow_redirects=True)


class Fetcher:
    """GET with retries (exponential back-off from ``backoff_base`` to ``backoff_max``)."""

    def __init__(self, client: httpx.AsyncClient, settings: IngestConfig) -> None:
        self._client = client
        self._settings = settings

    async def get(self, url: str, *, cap: int, byterange: ByteRange | None = None) -> bytes:
        """The body of ``url`` (or its sub-range), at most ``cap`` bytes, or a FetchError."""
        attempt = 0
        while True:
            try:
                return await self._get_once(url, cap, byterange)
            except FetchError as exc:
                if not exc.retriable or attempt >= self._settings.max_retries:
                    raise
                delay = self.backoff(attempt)
                logger.debug("retrying %s in %.2f s after: %s", url, delay, exc.detail)
                attempt += 1
                await asyncio.sleep(delay)

    def backoff(self, attempt: int) -> float:
        """Delay before retry ``attempt + 1``: doubling from ``backoff_base`` up to the cap."""
        s = self._settings
        return float(min(s.backoff_max, s.backoff_base * 2**attempt))

    async def _get_once(self, url: str, cap: int, byterange: ByteRange | None) -> bytes:
        if not url.startswith(("http://", "https://")):
            return _read_local(url, cap, byterange)
        timeout = self._settings.request_timeout
        try:
            async with asyncio.timeout(timeout):
                return await self._stream(url, cap, byterange)
        except (TimeoutError, httpx.TimeoutException):
            raise FetchError(
                StreamEventKind.TIMEOUT, url, f"no answer within {timeout:g} s"
            ) from None
        except httpx.ConnectError as exc:
            raise FetchError(StreamEventKind.HTTP_ERROR, url, _connect_detail(exc)) from None
        except httpx.HTTPError as exc:
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise FetchError(StreamEventKind.HTTP_ERROR, url, detail) from None

    async def _stream(self, url: str, cap: int, byterange: ByteRange | None) -> bytes:
        headers = {"Range": byterange.header} if byterange is not None else {}
        async with self._client.stream("GET", url, headers=headers) as response:
            _check_status(url, response.status_code)
            # A server that ignores Range answers 200 with the whole resource: read up to the end
            # of the wanted range and cut it out.
            whole = byterange is not None and response.status_code != 206
            limit = cap + byterange.offset if whole and byterange is not None else cap
            _check_length(url, response.headers.get("content-length"), limit, cap)
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > limit:
                    raise _oversize(url, f"body passed the {cap}-byte limit; stopped reading")
        if whole and byterange is not None:
            return bytes(body[byterange.offset : byterange.offset + byterange.length])
        return bytes(body)


def _check_status(url: str, status: int) -> None:
    if status < 400:
        return
    retriable = status >= 500 or status in _RETRIABLE_CLIENT_STATUSES
    reason = httpx.codes.get_reason_phrase(status)
    raise FetchError(
        StreamEventKind.HTTP_ERROR, url, f"HTTP {status} {reason}".strip(), status, retriable
    )


def _check_length(url: str, content_length: str | None, limit: int, cap: int) -> None:
    """Refuse before reading a byte when the server announces more than we accept."""
    if content_length is None or not content_length.isdigit():
        return
    if int(content_length) > limit:
        raise _oversize(url, f"Content-Length {content_length} is over the {cap}-byte limit")


def _oversize(url: str, detail: str) -> FetchError:
    return FetchError(StreamEventKind.OVERSIZE, url, detail, retriable=False)


def _connect_detail(exc: httpx.ConnectError) -> str:
    """Name the common case plainly (an origin that refuses connections), else the OS reason."""
    reason: str | None = None
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError) or (
            isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
        ):
            return "connection refused"
        if isinstance(cause, OSError) and cause.strerror:
            reason = cause.strerror
        cause = cause.__cause__ or cause.__context__
    return f"cannot connect: {reason or str(exc) or type(exc).__name__}"


def _read_local(url: str, cap: int, byterange: ByteRange | None) -> bytes:
    path = Path(unquote(urlsplit(url).path) if url.startswith("file://") else url)
    try:
        size = path.stat().st_size
        wanted = byterange.length if byterange is not None else size
        if wanted > cap:
            raise _oversize(url, f"file of {wanted} bytes is over the {cap}-byte limit")
        with path.open("rb") as f:
            if byterange is not None:
                f.seek(byterange.offset)
            return f.read(wanted)
    except OSError as exc:
        detail = f"cannot read file: {exc.strerror or exc}"
        raise FetchError(StreamEventKind.HTTP_ERROR, url, detail, retriable=False) from None


async def load_media_playlist(fetcher: Fetcher, url: str) -> tuple[MediaPlaylist, Variant | None]:
    """Fetch ``url``; when it is a master playlist, follow its best variant.

    Returns the media playlist and the variant chosen (None when ``url`` was a media playlist).
    Raises :class:`FetchError` or :class:`~stream_ingest.playlist.PlaylistError`.
    """
    playlist = parse_playlist(await fetch_text(fetcher, url), url)
    if isinstance(playlist, MediaPlaylist):
        return playlist, None
    variant = choose_variant(playlist)
    media = parse_media_playlist(await fetch_text(fetcher, variant.uri), variant.uri)
    return media, variant


def choose_variant(master: MasterPlaylist) -> Variant:
    """The highest-bandwidth variant, logged so an operator knows which rendition is watched."""
    variant = master.best_variant()
    logger.info(
        "master playlist %s: following variant %s (BANDWIDTH=%d, CODECS=%r), best of %d",
        master.url,
        variant.uri,
        variant.bandwidth,
        variant.codecs,
        len(master.variants),
    )
    return variant


async def fetch_text(fetcher: Fetcher, url: str) -> str:
    """A playlist body as text (UTF-8 per RFC 8216; undecodable bytes are replaced)."""
    data = await fetcher.get(url, cap=MAX_PLAYLIST_BYTES)
    return data.decode("utf-8", errors="replace")
