"""A tiny local origin and a follower harness for the ingest tests.

The origin speaks just enough HTTP/1.1 (one request per connection) to serve playlists and
segments, answer any status, hang, redirect or ignore Range; the harness runs one HLS follower
on a memory bus and collects what it publishes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from monitor.app.config import ChannelConfig
from monitor.core.bus import MemoryBus, Topics
from monitor.core.messages import SegmentMessage, StreamEvent, StreamEventKind, decode_message
from monitor.core.metrics import Metrics
from stream_ingest.config import IngestConfig
from stream_ingest.positions import Positions
from stream_ingest.sources.base import SourceContext
from stream_ingest.sources.hls import HlsFollower
from tests.conftest import free_port

# ---------------------------------------------------------------------------------------------
# A tiny origin: asyncio.start_server speaking just enough HTTP/1.1 (one request per connection).


@dataclass
class Response:
    """What the origin answers; ``hang`` never answers, ``send_length=False`` omits the length,
    ``ignore_range`` answers 200 with the whole body to a Range request."""

    status: int = 200
    body: bytes = b""
    hang: bool = False
    send_length: bool = True
    ignore_range: bool = False
    headers: dict[str, str] = field(default_factory=dict)


Route = Response | Callable[[], Response] | list[Response]


@dataclass
class Origin:
    """Serves ``routes`` (path -> response, callable, or list consumed in order, last repeats)."""

    port: int = field(default_factory=free_port)
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[float, str]] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hits(self, path: str) -> list[float]:
        return [t for t, p in self.requests if p == path]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        path = request[0].split(" ")[1]
        headers = dict(h.lower().split(": ", 1) for h in request[1:] if ": " in h)
        self.requests.append((time.monotonic(), path))
        response = self._route(path)
        if response.hang:
            await asyncio.sleep(3600)
        status, body = response.status, response.body
        if "range" in headers and status == 200 and not response.ignore_range:
            first, last = headers["range"].removeprefix("bytes=").split("-")
            status, body = 206, body[int(first) : int(last) + 1]
        head = f"HTTP/1.1 {status} X\r\nConnection: close\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in response.headers.items())
        if response.send_length:
            head += f"Content-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"\r\n" + body)
        await writer.drain()

    def _route(self, path: str) -> Response:
        route = self.routes.get(path, Response(404))
        if isinstance(route, list):
            return route.pop(0) if len(route) > 1 else route[0]
        return route() if callable(route) else route


def segment_bytes(seq: int, size: int = 188) -> bytes:
    return bytes([seq % 256]) * size


@dataclass
class LivePlaylist:
    """A live media playlist the test grows or slides; segments are served by the origin too."""

    origin: Origin
    target: int = 1
    first: int = 0
    durations: list[float] = field(default_factory=list)
    discontinuity_before: set[int] = field(default_factory=set)
    endlist: bool = False
    header: str = ""

    def add(self, count: int = 1, duration: float = 1.0) -> None:
        for _ in range(count):
            seq = self.first + len(self.durations)
            self.durations.append(duration)
            self.origin.routes.setdefault(f"/seg{seq}.ts", Response(body=segment_bytes(seq)))

    def slide_to(self, first: int, count: int) -> None:
        """Make the window ``first .. first+count-1`` (segments before it are gone)."""
        self.first, self.durations = first, []
        self.add(count)

    def render(self) -> Response:
        lines = ["#EXTM3U", f"#EXT-X-TARGETDURATION:{self.target}"]
        lines += [f"#EXT-X-MEDIA-SEQUENCE:{self.first}", *filter(None, [self.header])]
        for i, duration in enumerate(self.durations):
            seq = self.first + i
            if seq in self.discontinuity_before:
                lines.append("#EXT-X-DISCONTINUITY")
            lines += [f"#EXTINF:{duration:.3f},", f"seg{seq}.ts"]
        if self.endlist:
            lines.append("#EXT-X-ENDLIST")
        return Response(body="\n".join(lines).encode() + b"\n")


# ---------------------------------------------------------------------------------------------
# Harness: a follower on a MemoryBus with fresh metrics, stopped (and timed) at teardown.

FAST = IngestConfig(
    request_timeout=0.5,
    max_retries=1,
    backoff_base=0.05,
    backoff_max=0.1,
    stale_after_targets=3,
    start="first",
)


@dataclass
class Harness:
    origin: Origin
    bus: MemoryBus = field(default_factory=MemoryBus)
    topics: Topics = field(default_factory=Topics)
    metrics: Metrics = field(default_factory=lambda: Metrics(CollectorRegistry()))
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    segments: list[SegmentMessage] = field(default_factory=list)
    events: list[StreamEvent] = field(default_factory=list)
    positions: Positions | None = None  # where the follower records (and resumes) its position

    def __post_init__(self) -> None:
        self._segments = self.bus.consumer([self.topics.segments], group="test-segments")
        self._events = self.bus.consumer([self.topics.stream_events], group="test-events")
        self.playlist = LivePlaylist(self.origin)
        self.origin.routes["/live.m3u8"] = self.playlist.render

    def follow(
        self,
        url: str | None = None,
        channel_options: dict[str, object] | None = None,
        **settings: object,
    ) -> HlsFollower:
        channel = ChannelConfig(
            id="news", url=url or self.origin.url("/live.m3u8"), **(channel_options or {})
        )
        settings_ = FAST.model_copy(update=settings)
        context = SourceContext(
            settings_, self.bus, self.topics, self.metrics, positions=self.positions
        )
        follower = HlsFollower(channel, context)
        self.task = asyncio.create_task(follower.run(self.stop))
        return follower

    async def collect(self) -> None:
        for record in await self._segments.getmany(timeout_ms=0, max_records=1000):
            self.segments.append(decode_message(record.value, SegmentMessage))
        for record in await self._events.getmany(timeout_ms=0, max_records=1000):
            self.events.append(decode_message(record.value, StreamEvent))

    async def until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Collect what was published until ``predicate`` holds (or fail after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            await self.collect()
            if predicate():
                return
            assert self.task is None or not self.task.done(), "the follower stopped"
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; segments={self.seqs} events={self.kinds}")
            await asyncio.sleep(0.02)

    @property
    def seqs(self) -> list[int]:
        return [s.seq for s in self.segments]

    @property
    def kinds(self) -> list[str]:
        return [e.kind.value for e in self.events]

    def of_kind(self, kind: StreamEventKind) -> list[StreamEvent]:
        return [e for e in self.events if e.kind == kind]

    def errors(self, kind: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "vqm_ingest_errors_total", {"channel": "news", "kind": kind}
        )
        return value or 0.0

    def gauge(self, name: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, {"channel": "news"})
