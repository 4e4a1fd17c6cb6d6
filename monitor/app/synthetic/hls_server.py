"""A live HLS origin for synthetic channels, with faults on demand, for demos and tests.

Each channel gets a rolling live media playlist (RFC 8216, version 3): segment ``i`` appears
when the clock reaches ``start + (i + 1) * d`` (it has then been "recorded"), the playlist
shows the last ``window`` of them, and ``EXT-X-MEDIA-SEQUENCE`` slides with it. Segments are
encoded ahead of time in a worker thread, so a request for a listed segment is answered from
memory. ``mode="vod"`` serves a finished playlist of ``vod_segments`` segments instead.

Faults imitate a misbehaving origin or CDN, per channel: a segment answered with 404 or 500,
never answered, answered with garbage or with a truncated body; the playlist answered with
404/500, never, with a page that is not a playlist, or frozen (stale) for a time window.

    server = LiveHlsServer({"news": SyntheticChannel(seed=1)}, faults=Faults(segments=[
        SegmentFault(channel="news", seq=3, kind="http_500")]))
    await server.start()
    url = server.playlist_url("news")     # http://127.0.0.1:PORT/news/index.m3u8
    ...
    await server.stop()
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import logging
import math
import re
import socket
import time
from collections.abc import Callable, Generator, Mapping
from typing import Literal

import numpy as np
import uvicorn
from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from monitor.app.synthetic.channel import SyntheticChannel

logger = logging.getLogger(__name__)

SegmentFaultKind = Literal["http_404", "http_500", "hang", "garbage", "truncated"]
PlaylistFaultKind = Literal["http_404", "http_500", "hang", "malformed", "stale"]
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_TYPE = "video/mp2t"
_SEGMENT_NAME = re.compile(r"seg_(\d+)\.ts")
_KEEP_BEHIND = 3  # segments kept after they leave the window, as a real origin keeps them


class SegmentFault(BaseModel):
    """How segment ``seq`` of ``channel`` is answered instead of with its bytes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: str = Field(description="Channel id as given to the server.")
    seq: int = Field(ge=0, description="Media sequence number of the segment.")
    kind: SegmentFaultKind = Field(
        description="http_404/http_500: that status; hang: no answer until the server stops; "
        "garbage: random bytes of the segment's length; truncated: its first 40 percent."
    )


class PlaylistFault(BaseModel):
    """How the playlist of ``channel`` is answered during [start, end) seconds of uptime."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: str
    start: float = Field(ge=0, description="Seconds after the server started.")
    end: float = Field(gt=0, description="Seconds after the server started.")
    kind: PlaylistFaultKind = Field(
        description="http_404/http_500: that status; hang: no answer; malformed: an HTML error "
        "page with status 200; stale: the playlist as it was at ``start``, not updated."
    )


class Faults(BaseModel):
    """Every fault the origin injects; may be replaced on a running server."""

    model_config = ConfigDict(extra="forbid")

    segments: list[SegmentFault] = Field(default_factory=list)
    playlists: list[PlaylistFault] = Field(default_factory=list)

    def segment(self, channel: str, seq: int) -> SegmentFault | None:
        return next((f for f in self.segments if f.channel == channel and f.seq == seq), None)

    def playlist(self, channel: str, uptime: float) -> PlaylistFault | None:
        return next(
            (f for f in self.playlists if f.channel == channel and f.start <= uptime < f.end),
            None,
        )


class _QuietServer(uvicorn.Server):
    """uvicorn without its signal handlers: the process that embeds the origin owns Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class LiveHlsServer:
    """Serves synthetic channels as live (or VOD) HLS on localhost; see the module docstring.

    ``backlog`` segments are already available at start (a channel that has been on air for
    a while); ``clock`` is the monotonic time source, replaceable in tests.
    """

    def __init__(
        self,
        channels: Mapping[str, SyntheticChannel],
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        *,
        window: int = 6,
        mode: Literal["live", "vod"] = "live",
        vod_segments: int = 30,
        backlog: int = 0,
        workers: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not channels:
            raise ValueError("LiveHlsServer needs at least one channel")
        self.channels = dict(channels)
        self.host, self.port = host, port
        self.faults = faults or Faults()
        self.window, self.mode = window, mode
        self.vod_segments, self.backlog = vod_segments, backlog
        self._clock = clock
        self._workers = workers
        self._started_at = 0.0
        self._wall_at_start = 0.0
        self._cache: dict[tuple[str, int], concurrent.futures.Future[bytes]] = {}
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._server: _QuietServer | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._prefetch_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Bind, start serving, and begin encoding the first segments."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._stopping = asyncio.Event()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self._workers, thread_name_prefix="synth-encode"
        )
        self._started_at = self._clock()
        self._wall_at_start = time.time()
        # log_config=None: the embedding process owns logging; uvicorn must not reconfigure it.
        config = uvicorn.Config(
            self._app(),
            log_config=None,
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self._server = _QuietServer(config)
        self._serve_task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._serve_task.done():
                self._serve_task.result()  # raises the start-up error
                raise RuntimeError("HLS origin stopped during start-up")
            await asyncio.sleep(0.01)
        self._prefetch_task = asyncio.create_task(self._prefetch_loop())
        logger.info("synthetic HLS origin on http://%s:%d (%s)", self.host, self.port, self.mode)

    async def stop(self) -> None:
        """Answer hanging requests, stop serving, drop queued encodes; within a few seconds."""
        self._stopping.set()
        if self._prefetch_task is not None:
            self._prefetch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prefetch_task
        if self._server is not None and self._serve_task is not None:
            self._server.should_exit = True
            try:
                await asyncio.wait_for(self._serve_task, timeout=5.0)
            except TimeoutError:
                logger.warning("HLS origin did not stop in 5 s; cancelling it")
                self._serve_task.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._cache.clear()

    async def __aenter__(self) -> LiveHlsServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------ addresses and timeline

    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def playlist_url(self, channel_id: str) -> str:
        self._channel(channel_id)
        return f"{self.base_url()}/{channel_id}/index.m3u8"

    def segment_url(self, channel_id: str, seq: int) -> str:
        return f"{self.base_url()}/{channel_id}/seg_{seq}.ts"

    def uptime(self) -> float:
        return self._clock() - self._started_at

    def available(self, channel_id: str, uptime: float | None = None) -> int:
        """How many segments of the channel exist (0..n-1) at ``uptime`` (default: now)."""
        if self.mode == "vod":
            return self.vod_segments
        d = self._channel(channel_id).segment_duration
        elapsed = (self.uptime() if uptime is None else uptime) + self.backlog * d
        return max(0, math.floor(elapsed / d + 1e-9))

    def listed(self, channel_id: str, uptime: float | None = None) -> range:
        """Sequence numbers in the playlist at ``uptime``."""
        n = self.available(channel_id, uptime)
        return range(0 if self.mode == "vod" else max(0, n - self.window), n)

    def _channel(self, channel_id: str) -> SyntheticChannel:
        try:
            return self.channels[channel_id]
        except KeyError:
            raise KeyError(f"unknown channel {channel_id!r}") from None

    # ------------------------------------------------------------ playlists

    def playlist_text(self, channel_id: str, uptime: float | None = None) -> str:
        channel = self._channel(channel_id)
        seqs = self.listed(channel_id, uptime)
        d = channel.segment_duration
        lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{math.ceil(d - 1e-9)}"]
        if self.mode == "vod":
            lines.append("#EXT-X-PLAYLIST-TYPE:VOD")
        lines.append(f"#EXT-X-MEDIA-SEQUENCE:{seqs.start}")
        if self.mode == "live" and len(seqs):
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{self._program_date(channel, seqs.start)}")
        for seq in seqs:
            lines += [f"#EXTINF:{d:.3f},", f"seg_{seq}.ts"]
        if self.mode == "vod":
            lines.append("#EXT-X-ENDLIST")
        return "\n".join(lines) + "\n"

    def _program_date(self, channel: SyntheticChannel, seq: int) -> str:
        """Wall-clock time the segment began, as an origin stamps it (ISO 8601, ms, UTC)."""
        epoch = self._wall_at_start - self.backlog * channel.segment_duration
        when = dt.datetime.fromtimestamp(epoch + seq * channel.segment_duration, dt.UTC)
        return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    async def _playlist(self, request: Request) -> Response:
        channel_id = request.path_params["channel"]
        if channel_id not in self.channels:
            return PlainTextResponse("unknown channel", status_code=404)
        uptime = self.uptime()
        fault = self.faults.playlist(channel_id, uptime)
        if fault is not None:
            if fault.kind == "stale":
                uptime = fault.start
            else:
                return await self._faulty(fault.kind, b"<html><body>origin error</body></html>")
        return Response(
            self.playlist_text(channel_id, uptime),
            media_type=PLAYLIST_TYPE,
            headers={"Cache-Control": "no-cache"},
        )

    # ------------------------------------------------------------ segments

    async def _segment(self, request: Request) -> Response:
        channel_id = request.path_params["channel"]
        match = _SEGMENT_NAME.fullmatch(request.path_params["name"])
        if channel_id not in self.channels or match is None:
            return PlainTextResponse("not found", status_code=404)
        seq = int(match.group(1))
        if not self._servable(channel_id, seq):
            return PlainTextResponse("segment not available", status_code=404)
        fault = self.faults.segment(channel_id, seq)
        if fault is not None and fault.kind in ("http_404", "http_500", "hang"):
            return await self._faulty(fault.kind, b"")
        data = await asyncio.wrap_future(self._encode(channel_id, seq))
        if fault is not None:
            data = _spoil(data, fault.kind, self.channels[channel_id].seed, seq)
        return Response(data, media_type=SEGMENT_TYPE)

    def _servable(self, channel_id: str, seq: int) -> bool:
        listed = self.listed(channel_id)
        return listed.start - _KEEP_BEHIND <= seq < listed.stop

    async def _faulty(self, kind: str, body: bytes) -> Response:
        if kind == "hang":
            await self._stopping.wait()
            return PlainTextResponse("origin stopping", status_code=503)
        if kind == "http_404":
            return PlainTextResponse("not found", status_code=404)
        if kind == "http_500":
            return PlainTextResponse("internal server error", status_code=500)
        return Response(body, media_type="text/html")

    def _encode(self, channel_id: str, seq: int) -> concurrent.futures.Future[bytes]:
        """The segment's bytes, encoded once in the worker thread and kept while listed."""
        key = (channel_id, seq)
        future = self._cache.get(key)
        if future is None:
            if self._executor is None:
                raise RuntimeError("LiveHlsServer is not started")
            future = self._executor.submit(self._encode_now, channel_id, seq)
            self._cache[key] = future
        return future

    def _encode_now(self, channel_id: str, seq: int) -> bytes:
        started = time.perf_counter()
        data = self.channels[channel_id].segment_bytes(seq)
        logger.debug("encoded %s/%d in %.3f s", channel_id, seq, time.perf_counter() - started)
        return data

    async def _prefetch_loop(self) -> None:
        """Keep the listed segments and the next one encoded; forget those long gone."""
        while not self._stopping.is_set():
            for channel_id in self.channels:
                listed = self.listed(channel_id)
                ahead = listed.stop + (1 if self.mode == "live" else 0)
                for seq in range(listed.start, ahead):
                    self._encode(channel_id, seq)
                for key in [k for k in self._cache if k[0] == channel_id]:
                    if key[1] < listed.start - _KEEP_BEHIND:
                        del self._cache[key]
            await asyncio.sleep(0.1)

    # ------------------------------------------------------------ app

    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/{channel}/index.m3u8", self._playlist, methods=["GET", "HEAD"]),
                Route("/{channel}/{name}", self._segment, methods=["GET", "HEAD"]),
            ]
        )


def _spoil(data: bytes, kind: str, seed: int, seq: int) -> bytes:
    """Garbage of the same length, or a body cut short off any packet boundary."""
    if kind == "garbage":
        return np.random.default_rng([seed, seq, 0x6A4B]).bytes(len(data))
    if kind == "truncated":
        return data[: int(len(data) * 0.4) + 17]
    return data
