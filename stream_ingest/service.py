"""Run one source per channel: the ingest stage of both the one-process and the distributed
mode. Which source follows a channel is the registry's choice, by the URL's scheme
(:mod:`stream_ingest.sources`); this supervisor knows only the :class:`Source` interface.

    service = IngestService(config, bus, metrics, channel_ids=["news", "sport"])
    await service.run(stop)   # returns once every follower has stopped

``channel_ids`` picks the channels this process follows, so several ingest workers can split a
channel list between them; None follows every configured channel. With a ``state`` store,
each channel's last published segment is kept there, and a follower that starts (after a
hand-over, a take-over, or a restart below) carries on after it
(:mod:`stream_ingest.positions`). A source that dies of a bug
is logged, counted and restarted after a back-off, so one channel never takes the others down.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from monitor.core.bus import Bus
from monitor.core.channels import ChannelConfig
from monitor.core.logs import bind
from monitor.core.metrics import Metrics
from monitor.core.retry import RetryPolicy, pause
from monitor.core.state import StateStore
from stream_ingest.config import IngestView
from stream_ingest.fetch import make_client
from stream_ingest.positions import Positions
from stream_ingest.sources.base import SourceContext
from stream_ingest.sources.registry import source_class

logger = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 5.0
_RESTART_BACKOFF_MAX = 30.0


class IngestService:
    """Supervises one source task per selected channel."""

    def __init__(
        self,
        config: IngestView,
        bus: Bus,
        metrics: Metrics,
        channel_ids: list[str] | None = None,
        client: httpx.AsyncClient | None = None,
        state: StateStore | None = None,
    ) -> None:
        self.config = config
        self._bus = bus
        self._metrics = metrics
        self._client = client
        ttl = config.ingest.position_ttl
        self._positions = None if state is None else Positions(state, metrics, ttl)
        self.channels = self._select(config, channel_ids)

    @staticmethod
    def _select(config: IngestView, channel_ids: list[str] | None) -> list[ChannelConfig]:
        """The channels to follow; an unknown id is an error naming it (not a silent no-op)."""
        if channel_ids is None:
            return list(config.channels)
        known = {c.id for c in config.channels}
        unknown = [cid for cid in channel_ids if cid not in known]
        if unknown:
            raise ValueError(f"unknown channel ids: {', '.join(unknown)}")
        return [config.channel(cid) for cid in dict.fromkeys(channel_ids)]

    async def run(self, stop: asyncio.Event) -> None:
        """Follow every selected channel until ``stop`` is set (or all their playlists end)."""
        tasks = [
            asyncio.create_task(self._supervise(channel, stop), name=f"ingest-{channel.id}")
            for channel in self.channels
        ]
        logger.info("ingest: following %d channels", len(tasks))
        try:
            if tasks:
                await asyncio.wait(tasks)
        finally:
            if not stop.is_set():  # cancelled from outside: followers will not stop on their own
                for task in tasks:
                    task.cancel()
            await self._shutdown(tasks)

    @staticmethod
    async def _shutdown(tasks: list[asyncio.Task[None]]) -> None:
        """Give followers ``SHUTDOWN_TIMEOUT`` to stop on their own, then cancel the rest."""
        pending = [t for t in tasks if not t.done()]
        if pending:
            _, pending_set = await asyncio.wait(pending, timeout=SHUTDOWN_TIMEOUT)
            for task in pending_set:
                logger.warning("ingest: %s did not stop in time; cancelling", task.get_name())
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _supervise(self, channel: ChannelConfig, stop: asyncio.Event) -> None:
        """Run the channel's source on a client of its own (one handed in is shared)."""
        bind(channel=channel.id)  # this task is the channel's: every line it logs names it
        client = self._client or make_client(self.config.ingest)
        try:
            await self._restarting(channel, client, stop)
        finally:
            if self._client is None:
                await client.aclose()

    async def _restarting(
        self, channel: ChannelConfig, client: httpx.AsyncClient, stop: asyncio.Event
    ) -> None:
        """Run the channel's source; restart it with back-off if it ever crashes."""
        context = SourceContext(
            self.config.ingest,
            self._bus,
            self.config.topics,
            self._metrics,
            client,
            self._positions,
        )
        # A crashed source restarts after two base delays, doubling up to half a minute.
        restarts = RetryPolicy(
            initial=2 * self.config.ingest.backoff_base, cap=_RESTART_BACKOFF_MAX
        )
        failures = 0
        while not stop.is_set():
            try:
                source = source_class(channel.url)(channel, context)
                await source.run(stop)
                return
            except Exception:
                failures += 1
                delay = restarts.delay(failures)
                logger.exception(
                    "ingest: source for %s crashed; restarting in %.1f s", channel.id, delay
                )
                self._metrics.ingest_errors.labels(channel=channel.id, kind="internal").inc()
                await pause(stop, delay)
