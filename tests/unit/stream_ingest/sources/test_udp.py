"""MPEG-TS over UDP and RTP: URL options, RTP headers, and a loopback socket end to end."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from prometheus_client import CollectorRegistry

from monitor.app.config import ConfigError, load_config
from monitor.core.bus import Consumer, MemoryBus, Topics
from monitor.core.channels import ChannelConfig
from monitor.core.messages import SegmentMessage, StreamEvent, StreamEventKind, decode_message
from monitor.core.metrics import Metrics
from stream_ingest.config import IngestConfig, TsConfig
from stream_ingest.sources.base import SourceContext
from stream_ingest.sources.registry import source_class
from stream_ingest.sources.udp import UdpEndpoint, UdpSource, strip_rtp
from stream_ingest.streamurl import UrlOptionError
from stream_ingest.urls import UrlPolicy, UrlRefused
from tests.unit.stream_ingest.tsbuild import Builder


def test_multicast_options_are_read_from_the_url() -> None:
    endpoint = UdpEndpoint.parse(
        "udp://@232.1.1.1:5000?interface=10.0.0.5&source=10.1.1.1,10.1.1.2"
    )
    assert endpoint.multicast and endpoint.host == "232.1.1.1" and endpoint.port == 5000
    assert endpoint.interface == "10.0.0.5"
    assert endpoint.sources == ("10.1.1.1", "10.1.1.2")
    assert UdpEndpoint.parse("udp://:5000").host == ""
    assert not UdpEndpoint.parse("rtp://127.0.0.1:5004").multicast
    assert source_class("rtp://@239.1.1.1:5004") is UdpSource


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("udp://@239.1.1.1:5000?iface=eth0", "unknown option 'iface'; known: buffer_size"),
        ("udp://@239.1.1.1", "a port is required"),
        ("udp://example.com:5000", "'example.com' is not an IP address"),
        ("udp://127.0.0.1:5000?source=10.1.1.1", "apply to a multicast group only"),
        ("udp://@239.1.1.1:5000?interface=eth0", "'eth0' is not an IPv4 address"),
        ("udp://@239.1.1.1:5000?buffer_size=-1", "buffer_size must be a positive"),
        ("udp://@[ff02::1]:5000", "only IPv4 multicast"),
    ],
)
def test_bad_udp_urls_are_refused_naming_the_problem(url: str, message: str) -> None:
    with pytest.raises(UrlOptionError, match=message):
        UdpEndpoint.parse(url)


def test_a_bad_option_fails_the_channels_file_on_its_line(tmp_path) -> None:
    path = tmp_path / "channels.yaml"
    path.write_text("channels:\n  - id: news\n    url: udp://@239.1.1.1:5000?ttl=4\n")
    with pytest.raises(ConfigError, match=r"channels.yaml:3: .*unknown option 'ttl'"):
        load_config(path)


def test_rtp_headers_with_csrcs_an_extension_and_padding_are_stripped() -> None:
    payload = b"\x47" + b"\x00" * 187
    header = struct.pack(">BBHII", 0x80 | 0x20 | 0x10 | 2, 33, 1, 0, 0) + b"\x00" * 8
    extension = struct.pack(">HH", 0xBEDE, 1) + b"\x00" * 4
    padding = b"\x00\x00\x03"
    assert strip_rtp(header + extension + payload + padding) == payload
    assert strip_rtp(payload) is None  # version 1: not RTP


def _rtp(payload: bytes, seq: int) -> bytes:
    return struct.pack(">BBHII", 0x80, 33, seq & 0xFFFF, seq * 3600, 1) + payload


@dataclass
class Received:
    bus: MemoryBus
    topics: Topics
    consumer: Consumer
    segments: list[SegmentMessage] = field(default_factory=list)
    events: list[StreamEvent] = field(default_factory=list)

    async def drain(self) -> None:
        for record in await self.consumer.getmany(timeout_ms=50):
            if record.topic == self.topics.segments:
                self.segments.append(decode_message(record.value, SegmentMessage))
            else:
                self.events.append(decode_message(record.value, StreamEvent))

    async def until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, (self.segments, self.events)
            await self.drain()

    def kinds(self) -> list[StreamEventKind]:
        return [e.kind for e in self.events]


@pytest.fixture
async def receiving(request) -> AsyncIterator[tuple[Received, int, str]]:
    scheme = getattr(request, "param", "udp")
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    bus, topics = MemoryBus(), Topics()
    settings = IngestConfig(ts=TsConfig(segment_duration=1.0, input_loss_after=0.5))
    context = SourceContext(settings, bus, topics, Metrics(CollectorRegistry()))
    channel = ChannelConfig(id="ts", url=f"{scheme}://127.0.0.1:{port}")
    stop = asyncio.Event()
    task = asyncio.create_task(UdpSource(channel, context).run(stop))
    received = Received(bus, topics, bus.consumer([topics.segments, topics.stream_events], "t"))
    yield received, port, scheme
    stop.set()
    started = time.monotonic()
    await asyncio.wait_for(task, 3)
    assert time.monotonic() - started < 1.5, "the source took over a second to stop"


async def _send(port: int, scheme: str, frames: list[bytes], seq0: int = 0) -> None:
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(0, len(frames), 7):
            data = b"".join(frames[i : i + 7])
            sender.sendto(_rtp(data, seq0 + i) if scheme == "rtp" else data, ("127.0.0.1", port))
            if i % 70 == 0:
                await asyncio.sleep(0.002)
    finally:
        sender.close()


@pytest.mark.parametrize("receiving", ["udp", "rtp"], indirect=True)
async def test_datagrams_become_segments_with_the_stream_media_times(receiving) -> None:
    received, port, scheme = receiving
    builder = Builder(gop=25, start_pts=900_000)
    await _send(port, scheme, builder.frames(0, 25 * 4))
    await received.until(lambda: len(received.segments) >= 3)
    starts = [s.media_start for s in received.segments[:3]]
    assert starts == [10.0, 11.0, 12.0]
    assert [s.seq for s in received.segments[:3]] == [0, 1, 2]
    assert all(s.container == "mpegts" and s.payload[:1] == b"\x47" for s in received.segments)
    assert received.segments[0].codecs == "h264,aac"


async def test_input_loss_is_reported_and_recovered_and_the_next_segment_is_a_discontinuity(
    receiving,
) -> None:
    received, port, scheme = receiving
    builder = Builder(gop=25)
    await _send(port, scheme, builder.frames(0, 25 * 2))
    await received.until(lambda: StreamEventKind.INPUT_LOSS in received.kinds())
    published = len(received.segments)
    assert published >= 2  # the segment in progress went out with the loss
    await _send(port, scheme, builder.frames(25 * 2, 25 * 5))
    await received.until(lambda: StreamEventKind.RECOVERED in received.kinds())
    await received.until(lambda: len(received.segments) > published)
    assert received.segments[published].discontinuity


async def test_a_dropped_datagram_is_a_continuity_error_event(receiving) -> None:
    received, port, scheme = receiving
    builder = Builder(gop=25)
    frames = builder.frames(0, 25 * 3)
    del frames[140:147]  # one datagram's worth lost in the network
    await _send(port, scheme, frames)
    await received.until(lambda: StreamEventKind.CONTINUITY_ERROR in received.kinds())
    (event,) = [e for e in received.events if e.kind is StreamEventKind.CONTINUITY_ERROR]
    assert "continuity counter errors" in event.detail


@pytest.mark.parametrize(
    "uri", ["udp://@239.1.1.1:5000", "rtp://10.0.0.1:5004", "srt://10.0.0.1:9000"]
)
def test_a_playlist_can_never_send_ingest_to_a_stream_url(uri: str) -> None:
    """Stream schemes are for channel URLs an operator configured, never for URIs a
    playlist lists: an origin cannot make vqm join a multicast group or call out over SRT."""
    policy = UrlPolicy.for_channel("https://origin.example/live.m3u8", ["*"])
    with pytest.raises(UrlRefused, match="only http, https"):
        policy.check(uri)
