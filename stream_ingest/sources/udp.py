"""Receive MPEG-TS over UDP (unicast or multicast) or RTP, and publish it as segments.

    udp://127.0.0.1:5000                      unicast: listen on this address and port
    udp://:5000                               unicast on every address
    udp://@239.1.1.1:5000                     multicast: join the group (any interface)
    udp://@239.1.1.1:5000?interface=10.0.0.5  ... on the interface with this address
    udp://@232.1.1.1:5000?source=10.1.1.1     source-specific multicast (IGMPv3): only
                                              what that sender sends (several: a,b)
    rtp://@239.1.1.1:5004                     the same, with RTP headers (RFC 3550) around
                                              the TS packets (payload type 33, RFC 2250)

Query options: ``interface`` (IPv4 address of the interface to join on), ``source``
(comma-separated IPv4 senders; multicast only), ``buffer_size`` (the socket's receive buffer,
bytes, default 4 MiB). An unknown option, a missing port, a host that is not an IP address,
``source`` or ``interface`` without a multicast group: each is a config error naming it.

Datagrams are received by an asyncio datagram endpoint (the loop never blocks on the
socket) and handed to :class:`~stream_ingest.tsfeed.TsFeed`, which frames, checks, cuts and
publishes. The source stops within a second of ``stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
from collections import deque
from dataclasses import dataclass

from monitor.core.messages import StreamEventKind
from monitor.core.redact import redact_url
from stream_ingest.sources.base import Source
from stream_ingest.sources.registry import register
from stream_ingest.streamurl import UrlOptionError, split_stream_url
from stream_ingest.tsfeed import TsFeed

logger = logging.getLogger(__name__)

# Not in every Python's socket module; Linux's value (struct ip_mreq_source order below).
IP_ADD_SOURCE_MEMBERSHIP = getattr(socket, "IP_ADD_SOURCE_MEMBERSHIP", 39)
_OPTIONS = ("buffer_size", "interface", "source")
_DEFAULT_BUFFER = 4 * 1024 * 1024
_MAX_QUEUED = 20_000  # datagrams waiting for the feed (about 200 Mbit/s for one second)
_TICK = 0.5


@dataclass(frozen=True)
class UdpEndpoint:
    """Where and how to listen, from a ``udp://`` or ``rtp://`` URL."""

    scheme: str
    host: str  # "" for every address
    port: int
    multicast: bool
    interface: str | None = None
    sources: tuple[str, ...] = ()
    buffer_size: int = _DEFAULT_BUFFER

    @classmethod
    def parse(cls, url: str) -> UdpEndpoint:
        """The endpoint of ``url``; :class:`UrlOptionError` saying what is wrong."""
        shown = redact_url(url)
        parts, port, options = split_stream_url(url, _OPTIONS, "udp://@239.1.1.1:5000")
        host = parts.hostname or ""
        if host:
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                raise UrlOptionError(f"{shown}: {host!r} is not an IP address") from None
            multicast = address.is_multicast
            if multicast and address.version != 4:
                raise UrlOptionError(f"{shown}: only IPv4 multicast groups are supported")
        else:
            multicast = False
        interface = options.get("interface") or None
        sources = tuple(s.strip() for s in options.get("source", "").split(",") if s.strip())
        if (interface or sources) and not multicast:
            raise UrlOptionError(f"{shown}: interface and source apply to a multicast group only")
        for value in (interface, *sources):
            if value is not None:
                _ipv4(shown, value)
        buffer_size = _DEFAULT_BUFFER
        if "buffer_size" in options:
            try:
                buffer_size = int(options["buffer_size"])
            except ValueError:
                buffer_size = 0
            if buffer_size <= 0:
                raise UrlOptionError(f"{shown}: buffer_size must be a positive number of bytes")
        return cls(parts.scheme.lower(), host, port, multicast, interface, sources, buffer_size)

    def open(self) -> socket.socket:
        """A bound, non-blocking socket, joined to the group when multicast."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.buffer_size)
            sock.bind((self.host, self.port))
            if self.multicast:
                self._join(sock)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    def _join(self, sock: socket.socket) -> None:
        group = socket.inet_aton(self.host)
        interface = socket.inet_aton(self.interface or "0.0.0.0")
        if not self.sources:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, group + interface)
            return
        for source in self.sources:
            # Linux's struct ip_mreq_source: group, interface, source.
            request = struct.pack("4s4s4s", group, interface, socket.inet_aton(source))
            sock.setsockopt(socket.IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, request)

    def describe(self) -> str:
        where = f"{self.host or '*'}:{self.port}"
        if not self.multicast:
            return f"{self.scheme} unicast {where}"
        extra = f" from {','.join(self.sources)}" if self.sources else ""
        on = f" on {self.interface}" if self.interface else ""
        return f"{self.scheme} multicast {where}{extra}{on}"


def _ipv4(shown: str, value: str) -> None:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        raise UrlOptionError(f"{shown}: {value!r} is not an IPv4 address") from None


def strip_rtp(datagram: bytes) -> bytes | None:
    """The payload of an RTP packet (RFC 3550: 12 bytes, CSRCs, header extension, padding),
    or None when the datagram is not RTP version 2."""
    if len(datagram) < 12 or datagram[0] >> 6 != 2:
        return None
    first = datagram[0]
    offset = 12 + 4 * (first & 0x0F)
    if first & 0x10:  # header extension: 16-bit profile, 16-bit length in 32-bit words
        if len(datagram) < offset + 4:
            return None
        offset += 4 + 4 * struct.unpack_from(">H", datagram, offset + 2)[0]
    end = len(datagram)
    if first & 0x20 and end > offset:  # padding: the last byte counts it
        end -= datagram[-1]
    return datagram[offset:end] if end > offset else None


class _Receiver(asyncio.DatagramProtocol):
    """Queues datagrams with their arrival time; the source's loop drains the queue."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: deque[tuple[bytes, float]] = deque()
        self.ready = asyncio.Event()
        self.dropped = 0
        self.error: Exception | None = None

    def datagram_received(self, data: bytes, addr: object) -> None:
        if len(self.queue) >= _MAX_QUEUED:
            self.queue.popleft()
            self.dropped += 1
        self.queue.append((data, self.loop.time()))
        self.ready.set()

    def error_received(self, exc: Exception) -> None:
        self.error = exc
        self.ready.set()


@register
class UdpSource(Source):
    """MPEG-TS over UDP or RTP, unicast or multicast; see the module docstring."""

    schemes = ("udp", "rtp")

    @classmethod
    def check_url(cls, url: str) -> None:
        UdpEndpoint.parse(url)

    async def run(self, stop: asyncio.Event) -> None:
        endpoint = UdpEndpoint.parse(self.channel.url)
        feed = TsFeed(self.channel, self.context)
        loop = asyncio.get_running_loop()
        receiver = _Receiver(loop)
        try:
            sock = endpoint.open()
        except OSError as exc:
            await feed.report(StreamEventKind.SOURCE_ERROR, f"cannot listen: {exc}")
            raise
        transport, _ = await loop.create_datagram_endpoint(lambda: receiver, sock=sock)
        logger.info("channel %s: receiving %s", self.channel.id, endpoint.describe())
        self.context.metrics.ingest_up.labels(channel=self.channel.id).set(0)
        try:
            await self._receive(feed, receiver, endpoint.scheme == "rtp", stop)
        finally:
            transport.close()
            await feed.end()

    async def _receive(
        self, feed: TsFeed, receiver: _Receiver, rtp: bool, stop: asyncio.Event
    ) -> None:
        loop = asyncio.get_running_loop()
        not_rtp = dropped = 0
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(receiver.ready.wait(), _TICK)
            receiver.ready.clear()
            handled = 0
            while receiver.queue:
                data, arrival = receiver.queue.popleft()
                payload = strip_rtp(data) if rtp else data
                if payload is None:
                    not_rtp += 1
                    if not_rtp == 1:
                        await feed.report(
                            StreamEventKind.SOURCE_ERROR, "datagrams that are not RTP: dropped"
                        )
                    continue
                await feed.data(payload, arrival)
                handled += 1
                if handled % 256 == 0:
                    await asyncio.sleep(0)  # a burst never holds the loop for long
            if receiver.dropped != dropped:
                lost, dropped = receiver.dropped - dropped, receiver.dropped
                await feed.report(
                    StreamEventKind.SOURCE_ERROR,
                    f"{lost} datagrams dropped: ingest fell behind the input",
                    lost,
                )
            if receiver.error is not None:
                error, receiver.error = receiver.error, None
                logger.warning("channel %s: socket error: %s", self.channel.id, error)
            await feed.tick(loop.time())
