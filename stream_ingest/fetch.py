"""Fetching playlists and segments: a URL policy, a total timeout, a size cap, retries.

Every failure becomes a :class:`FetchError` whose ``kind`` is the stream event kind to report,
so callers never have to know httpx's exception tree::

    fetcher = Fetcher(client, settings, UrlPolicy.for_channel(channel.url, channel.allow_hosts))
    try:
        data = await fetcher.get(url, cap=settings.max_segment_bytes)
    except FetchError as exc:
        ...  # exc.kind, exc.status, exc.detail

Every URL, and every redirect's target, is checked against the policy first
(:mod:`stream_ingest.urls`); a refused one is a ``url_refused`` error, never a request. Only a
policy for a playlist named on the command line (``vqm scan PATH``) reads local files, and then
only regular ones, in a worker thread: nothing an origin sends can make ingest open a file or
block the event loop. The size cap counts the bytes read, whatever the byte range asks for.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import os
import ssl
import stat
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from monitor.core.errors import VqmError
from monitor.core.messages import StreamEventKind
from monitor.core.retry import parse_retry_after, retry_after_of
from stream_ingest.config import IngestConfig
from stream_ingest.playlist import (
    ByteRange,
    MasterPlaylist,
    MediaPlaylist,
    PlaylistError,
    Rendition,
    Variant,
    VariantChoice,
    parse_playlist,
)
from stream_ingest.urls import UrlPolicy, UrlRefused, is_local_scheme

logger = logging.getLogger(__name__)

MAX_PLAYLIST_BYTES = 4 * 1024 * 1024
MAX_REDIRECTS = 5
# Playlists longer than this are parsed in a worker thread, so a huge one (a 100,000-entry
# playlist takes seconds) never stalls the event loop; PARSE_TIMEOUT bounds the wait.
PARSE_IN_THREAD_BYTES = 64 * 1024
PARSE_TIMEOUT = 10.0
PARSE_YIELD_LINES = 500
# 4xx statuses that trying again can fix: not yet published (404), timeouts and throttling.
_RETRIABLE_CLIENT_STATUSES = {404, 408, 425, 429}
# Statuses whose Retry-After says when to come back (RFC 9110 for 503, RFC 6585 for 429).
_RETRY_AFTER_STATUSES = {429, 503}


class FetchError(VqmError):
    """A request that failed for good (after retries, or at once when retrying cannot help)."""

    def __init__(
        self,
        kind: StreamEventKind,
        url: str,
        detail: str,
        status: int | None = None,
        retriable: bool = True,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{url}: {detail}", retriable=retriable)
        self.kind = kind
        self.url = url
        self.detail = detail
        self.status = status
        self.retry_after = retry_after  # seconds the origin asked for (429, 503), if it did


def make_client(settings: IngestConfig) -> httpx.AsyncClient:
    """A client for one channel: per-operation timeouts, redirects, and a connection pool of
    its own, with the one TLS context every client shares.

    One pool per channel rather than one for all: httpcore walks every connection of a pool
    on each request and on each response closed (and checks each idle one's socket), so one
    pool shared by hundreds of channels made every request cost in proportion to the
    channels, and its 20 kept-alive connections made most requests open a new one. The TLS
    context (the CA bundle parsed) is shared, so a channel's client costs no certificate
    loading."""
    return httpx.AsyncClient(
        timeout=settings.request_timeout, follow_redirects=True, verify=_tls_context()
    )


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default verification (certifi's bundle, or SSL_CERT_FILE / SSL_CERT_DIR),
    built once for the process."""
    return httpx.create_ssl_context()


class Fetcher:
    """GET with retries (the settings' :class:`~monitor.core.retry.RetryPolicy`: jittered
    exponential back-off from ``backoff_base`` to ``backoff_max``, at least an origin's
    ``Retry-After``), for the URLs ``policy`` allows."""

    def __init__(
        self, client: httpx.AsyncClient, settings: IngestConfig, policy: UrlPolicy
    ) -> None:
        self._client = client
        self._settings = settings
        self._retry = settings.retry
        self.policy = policy

    async def get(self, url: str, *, cap: int, byterange: ByteRange | None = None) -> bytes:
        """The body of ``url`` (or its sub-range), at most ``cap`` bytes, or a FetchError."""
        self._check(url)
        return await self._retry.run(
            lambda: self._get_once(url, cap, byterange),
            retriable=lambda exc: isinstance(exc, FetchError) and exc.retriable,
            on_retry=functools.partial(_log_retry, url),
        )

    def _check(self, url: str) -> None:
        try:
            self.policy.check(url)
        except UrlRefused as exc:
            raise FetchError(StreamEventKind.URL_REFUSED, url, str(exc), retriable=False) from None

    async def _get_once(self, url: str, cap: int, byterange: ByteRange | None) -> bytes:
        if is_local_scheme(url):  # only a command-line playlist's policy lets one through
            return await asyncio.to_thread(_read_local, url, cap, byterange)
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
        """GET ``url``, following at most ``MAX_REDIRECTS`` redirects the policy allows."""
        headers = {"Range": byterange.header} if byterange is not None else {}
        for _ in range(MAX_REDIRECTS + 1):
            async with self._client.stream(
                "GET", url, headers=headers, follow_redirects=False
            ) as response:
                if not response.is_redirect:
                    _check_status(url, response)
                    return await _read_body(url, response, cap, byterange)
                location = response.headers.get("location")
            if not location:
                raise FetchError(StreamEventKind.HTTP_ERROR, url, "redirect without Location")
            url = urljoin(url, location)
            self._check(url)
        raise FetchError(StreamEventKind.HTTP_ERROR, url, f"more than {MAX_REDIRECTS} redirects")


async def _read_body(
    url: str, response: httpx.Response, cap: int, byterange: ByteRange | None
) -> bytes:
    """The body (or the sub-range asked for), reading at most ``cap`` bytes in all.

    A server that ignores Range answers 200 with the whole resource: ingest reads up to the
    end of the wanted range and cuts it out, and refuses when that end is past the cap.
    """
    whole = byterange is not None and response.status_code != 206
    if whole and byterange is not None:
        end = byterange.offset + byterange.length
        if end > cap:
            raise _oversize(
                url, f"the server ignored Range; bytes up to {end} would pass the {cap}-byte limit"
            )
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) >= end:
                break
        return bytes(body[byterange.offset : end])
    _check_length(url, response.headers.get("content-length"), cap)
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > cap:
            raise _oversize(url, f"body passed the {cap}-byte limit; stopped reading")
    return bytes(body)


def _check_status(url: str, response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    retriable = status >= 500 or status in _RETRIABLE_CLIENT_STATUSES
    reason = httpx.codes.get_reason_phrase(status)
    retry_after = None
    if status in _RETRY_AFTER_STATUSES:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
    detail = f"HTTP {status} {reason}".strip()
    raise FetchError(StreamEventKind.HTTP_ERROR, url, detail, status, retriable, retry_after)


def _log_retry(url: str, exc: BaseException, attempt: int, delay: float) -> None:
    detail = exc.detail if isinstance(exc, FetchError) else str(exc)
    asked = retry_after_of(exc)
    if asked is not None:
        detail += f" (Retry-After {asked:g} s)"
    logger.debug("retrying %s in %.2f s after: %s", url, delay, detail)


def _check_length(url: str, content_length: str | None, cap: int) -> None:
    """Refuse before reading a byte when the server announces more than we accept."""
    if content_length is None or not content_length.isdigit():
        return
    if int(content_length) > cap:
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
    """A regular local file (blocking: run it in a thread). The file is opened without
    blocking and checked before a byte is read, so a FIFO or a device is refused, not read."""
    path = Path(unquote(urlsplit(url).path) if url.startswith("file://") else url)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        detail = f"cannot read file: {exc.strerror or exc}"
        raise FetchError(StreamEventKind.HTTP_ERROR, url, detail, retriable=False) from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            detail = "not a regular file (a FIFO, device or directory is never read)"
            raise FetchError(StreamEventKind.URL_REFUSED, url, detail, retriable=False)
        wanted = byterange.length if byterange is not None else info.st_size
        if wanted > cap:
            raise _oversize(url, f"file of {wanted} bytes is over the {cap}-byte limit")
        if byterange is not None:
            f.seek(byterange.offset)
        return f.read(wanted)


class Chosen(NamedTuple):
    """What a playlist URL leads to: the media playlist to read, the variant chosen from a
    master playlist and that variant's separate audio rendition (None: not a master; the
    sound muxed in)."""

    media: MediaPlaylist
    variant: Variant | None = None
    audio: Rendition | None = None


async def load_media_playlist(fetcher: Fetcher, url: str) -> Chosen:
    """Fetch ``url``; when it is a master playlist, follow its best variant.

    Raises :class:`FetchError` or :class:`~stream_ingest.playlist.PlaylistError`.
    """
    playlist = await fetch_playlist(fetcher, url)
    if isinstance(playlist, MediaPlaylist):
        return Chosen(playlist)
    variant = choose_variant(playlist)
    media = await fetch_playlist(fetcher, variant.uri)
    if isinstance(media, MasterPlaylist):
        raise PlaylistError(f"{variant.uri}: expected a media playlist, got a master playlist")
    return Chosen(media, variant, playlist.audio_for(variant))


def choose_variant(master: MasterPlaylist, choice: VariantChoice = "highest") -> Variant:
    """The variant ``choice`` names (the highest bandwidth by default), logged so an operator
    knows which rendition is watched."""
    variant = master.choose(choice)
    logger.info(
        "master playlist %s: following variant %s (BANDWIDTH=%d, CODECS=%r), %s of %d",
        master.url,
        variant.uri,
        variant.bandwidth,
        variant.codecs,
        choice,
        len(master.variants),
    )
    return variant


Playlist = MediaPlaylist | MasterPlaylist


async def fetch_playlist(fetcher: Fetcher, url: str) -> Playlist:
    """Fetch and parse a playlist (UTF-8 per RFC 8216; undecodable bytes are replaced)."""
    return await parse_off_loop(await fetcher.get(url, cap=MAX_PLAYLIST_BYTES), url)


class PlaylistReader:
    """Fetches and parses the playlists one follower reloads; a body that has not changed
    since the last load of the same URL is not parsed again (a live follower reloads every
    target duration, and most reloads of a long playlist find it unchanged)."""

    def __init__(self, fetcher: Fetcher) -> None:
        self.fetcher = fetcher
        self._last: dict[str, tuple[bytes, Playlist]] = {}

    async def read(self, url: str) -> Playlist:
        data = await self.fetcher.get(url, cap=MAX_PLAYLIST_BYTES)
        last = self._last.get(url)
        if last is not None and last[0] == data:
            return last[1]
        playlist = await parse_off_loop(data, url)
        self._last = {u: v for u, v in self._last.items() if u != url}
        self._last[url] = (data, playlist)
        while len(self._last) > 2:  # the master and the media playlist at most
            self._last.pop(next(iter(self._last)))
        return playlist


async def parse_off_loop(data: bytes, url: str) -> Playlist:
    """Parse ``data``; a long playlist in a worker thread within ``PARSE_TIMEOUT``, so the
    event loop keeps serving the other channels and the API meanwhile."""
    text = data.decode("utf-8", errors="replace")
    if len(data) <= PARSE_IN_THREAD_BYTES:
        return parse_playlist(text, url)
    try:
        parse = asyncio.to_thread(parse_playlist, text, url, PARSE_YIELD_LINES)
        return await asyncio.wait_for(parse, PARSE_TIMEOUT)
    except TimeoutError:
        raise PlaylistError(
            f"{url}: {len(data)} bytes not parsed within {PARSE_TIMEOUT:g} s"
        ) from None
