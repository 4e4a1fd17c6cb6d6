"""Distributed ingest: follow only the channels whose lease this worker holds.

Several ``vqm ingest`` processes share one channel list.
:class:`~stream_ingest.leases.ChannelLeases` decides which of them follows each channel;
:class:`OwnedIngest` runs the leases and keeps one :class:`IngestService` per owned channel,
starting a source when a lease is won and
stopping it when the lease is lost or handed back.

    ingest = OwnedIngest(config, bus, metrics, leases)
    await ingest.run(stop)     # returns once leases are released and followers have stopped

A lost lease stops the follower at once (another worker may already follow the channel), so
two workers follow one channel at the same time only for the moment between the other taking
an expired lease and this worker noticing, at most ``ttl / 3``; downstream dedup on
(channel, seq, detector) absorbs the overlap. Followers keep each channel's last published
segment in the leases' store, so the worker that takes a channel over carries on after it
(:mod:`stream_ingest.positions`): a hand-over repeats a segment at worst, never skips one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from monitor.core.bus import Bus
from monitor.core.metrics import Metrics
from stream_ingest.config import IngestView
from stream_ingest.leases import ChannelLeases
from stream_ingest.service import SHUTDOWN_TIMEOUT, IngestService

logger = logging.getLogger(__name__)

CHECK_SECONDS = 0.5  # how often ownership is compared with the running followers


@dataclass
class _Following:
    stop: asyncio.Event
    task: asyncio.Task[None]


class OwnedIngest:
    """Follows the channels ``leases`` says this worker owns; see the module docstring."""

    def __init__(
        self, config: IngestView, bus: Bus, metrics: Metrics, leases: ChannelLeases
    ) -> None:
        self.config = config
        self.leases = leases
        self._bus = bus
        self._metrics = metrics
        self._following: dict[str, _Following] = {}
        leases.set_channels(c.id for c in config.channels)

    @property
    def following(self) -> set[str]:
        """Channels with a running follower now."""
        return {cid for cid, f in self._following.items() if not f.task.done()}

    async def run(self, stop: asyncio.Event) -> None:
        """Run the leases and the followers until ``stop``; then stop followers, release."""
        leases = asyncio.create_task(self.leases.run(stop), name="ingest-leases")
        try:
            while not stop.is_set() and not leases.done():
                await self._follow(await self.leases.owned())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), CHECK_SECONDS)
        finally:
            await self._drop(set(self._following), "stopping")
            if not stop.is_set():
                leases.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(leases, SHUTDOWN_TIMEOUT)  # releases every lease

    async def _follow(self, owned: set[str]) -> None:
        """Start followers for new leases, stop those whose lease is gone."""
        await self._drop(set(self._following) - owned, "lease lost or handed back")
        for channel_id in sorted(owned - set(self._following)):
            service = IngestService(
                self.config, self._bus, self._metrics, [channel_id], state=self.leases.state
            )
            child_stop = asyncio.Event()
            task = asyncio.create_task(service.run(child_stop), name=f"ingest-owned-{channel_id}")
            self._following[channel_id] = _Following(child_stop, task)
            logger.info("worker %s follows %s", self.leases.worker_id, channel_id)

    async def _drop(self, channel_ids: set[str], why: str) -> None:
        dropped = [self._following.pop(cid) for cid in channel_ids if cid in self._following]
        for following in dropped:
            following.stop.set()
        for cid in sorted(channel_ids):
            logger.info("worker %s stops following %s (%s)", self.leases.worker_id, cid, why)
        if dropped:
            await asyncio.gather(*(f.task for f in dropped), return_exceptions=True)
