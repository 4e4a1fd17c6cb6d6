"""The ingest source interface: one channel followed from its origin onto the bus.

A source is one module in this package with one :class:`Source` subclass, registered under
the URL schemes it reads::

    @register
    class UdpSource(Source):
        schemes = ("udp", "rtp")
        async def run(self, stop: asyncio.Event) -> None:
            ...   # publish SegmentMessage / StreamEvent on self.context.topics

Every source produces the same messages (:class:`~monitor.core.messages.SegmentMessage` on
``topics.segments``, :class:`~monitor.core.messages.StreamEvent` on ``topics.stream_events``),
so inference and alerting never know where a channel came from. A source that can resume
records each published segment in ``context.positions`` and, when it starts, carries on
after the last one recorded (:mod:`stream_ingest.positions`). The supervisor
(:mod:`stream_ingest.service`) and the leases (:mod:`stream_ingest.owned`) only ever see this
interface.
"""

from __future__ import annotations

import abc
import asyncio
from dataclasses import dataclass
from typing import ClassVar

import httpx

from monitor.core.bus import Bus, Topics
from monitor.core.channels import ChannelConfig
from monitor.core.metrics import Metrics
from stream_ingest.config import IngestConfig
from stream_ingest.positions import Positions


@dataclass(frozen=True)
class SourceContext:
    """What every source of an ingest process shares: settings, the bus, metrics, the one
    HTTP client (None: a source that needs one makes and closes its own) and where each
    channel's last published segment is kept (None: nowhere; a source starts afresh)."""

    settings: IngestConfig
    bus: Bus
    topics: Topics
    metrics: Metrics
    http: httpx.AsyncClient | None = None
    positions: Positions | None = None


class Source(abc.ABC):
    """Follows one channel until stopped (or until a finite input ends)."""

    schemes: ClassVar[tuple[str, ...]]

    def __init__(self, channel: ChannelConfig, context: SourceContext) -> None:
        self.channel = channel
        self.context = context

    @classmethod
    def check_url(cls, url: str) -> None:  # noqa: B027 - optional hook
        """Raise ValueError naming what is wrong with the channel URL's options (checked
        when the channels file is loaded); a source without options accepts any."""
        return None

    @abc.abstractmethod
    async def run(self, stop: asyncio.Event) -> None:
        """Publish the channel's segments and stream events until ``stop`` is set.

        Returns when ``stop`` is set or the input ends (a VOD playlist); raises only on a
        bug in the source itself (the supervisor restarts it after a back-off).
        """
