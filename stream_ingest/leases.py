"""Channel ownership among several ingest workers, by leases in the state store.

Each channel has one key, ``lease:{channel}``, holding the id of the worker that follows it,
with a TTL. A worker renews its leases every ``ttl / 3``; one that dies stops renewing, its
keys expire, and the others take its channels within two lease periods. Workers also
announce themselves (``lease-workers:{worker_id}``, same TTL) so each can aim for its fair
share, ``ceil(channels / workers)``, and hand surplus channels back when a worker joins.

    leases = ChannelLeases(store, worker_id="ingest-0", ttl=15, channels=["news", "sport"])
    task = asyncio.create_task(leases.run(stop))
    ...
    for channel in await leases.owned():
        ...   # follow it

Stopping ``run`` with its event releases every lease at once (a clean hand-off); a crash, or
cancelling the task, leaves them to expire. ``owned`` only reports leases confirmed within the
last ``ttl``, so a worker cut off from the store stops claiming its channels about when the
others may take them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

from monitor.core.state import MemoryStateStore, StateError, StateStore

logger = logging.getLogger(__name__)

LEASE_NS = "lease"
WORKER_NS = "lease-workers"


@runtime_checkable
class LeaseOps(Protocol):
    """Compare-and-act on a key: only the holder of ``value`` may extend or drop it.

    :class:`~monitor.core.state_redis.RedisStateStore` implements it (Lua scripts); a good
    candidate for the :class:`~monitor.core.state.StateStore` interface itself.
    """

    async def renew(self, ns: str, key: str, value: str, ttl: float) -> bool: ...

    async def release(self, ns: str, key: str, value: str) -> bool: ...


class MemoryLeaseOps:
    """:class:`LeaseOps` for :class:`MemoryStateStore`.

    Its methods never suspend, so a read followed by a write here runs without any other
    task in between: atomic within the one event loop that uses it.
    """

    def __init__(self, store: MemoryStateStore) -> None:
        self._store = store

    async def renew(self, ns: str, key: str, value: str, ttl: float) -> bool:
        if await self._store.get(ns, key) != value:
            return False
        await self._store.set(ns, key, value, ttl=ttl)
        return True

    async def release(self, ns: str, key: str, value: str) -> bool:
        if await self._store.get(ns, key) != value:
            return False
        await self._store.delete(ns, key)
        return True


def lease_ops(store: StateStore) -> LeaseOps:
    """The store's own compare-and-act primitives, or the memory ones; else ``TypeError``."""
    if isinstance(store, LeaseOps):
        return store
    if isinstance(store, MemoryStateStore):
        return MemoryLeaseOps(store)
    raise TypeError(f"{type(store).__name__} has no renew/release; leases need them")


def _preference(worker_id: str, channel: str) -> bytes:
    """Rendezvous order: each worker ranks channels differently, so workers starting
    together reach for different channels first and keep the same ones across rounds."""
    return hashlib.sha1(f"{worker_id}\0{channel}".encode()).digest()


class ChannelLeases:
    """Which channels this worker follows; see the module docstring for the protocol."""

    def __init__(
        self,
        state: StateStore,
        worker_id: str,
        ttl: float,
        channels: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"lease ttl must be positive, got {ttl}")
        self.state = state
        self.worker_id = worker_id
        self.ttl = ttl
        self.period = ttl / 3
        self._ops = lease_ops(state)
        self._clock = clock
        self._channels: list[str] = []
        self._confirmed: dict[str, float] = {}  # channel -> when its lease was last confirmed
        self._rounds = 0
        self.set_channels(channels)

    def set_channels(self, channels: Iterable[str]) -> None:
        """Channels to share out (the same list on every worker); dropped ones are released
        on the next round."""
        self._channels = sorted(set(channels), key=lambda c: _preference(self.worker_id, c))

    async def owned(self) -> set[str]:
        """Channels whose lease this worker confirmed within the last ``ttl``."""
        now = self._clock()
        return {c for c, at in self._confirmed.items() if now - at < self.ttl}

    async def run(self, stop: asyncio.Event) -> None:
        """Renew and balance every ``ttl / 3`` until ``stop``; then release everything."""
        while not stop.is_set():
            try:
                await self.round()
            except StateError as exc:
                logger.warning("lease round of %s failed: %s", self.worker_id, exc)
            except Exception:
                logger.exception("lease round of %s failed", self.worker_id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.period)
        await self.release_all()

    async def round(self) -> None:
        """One pass: announce, renew, shed surplus, take free channels up to the fair share.

        The first round only announces, so workers starting together see each other
        before anyone takes channels.
        """
        started = self._clock()
        await self.state.set(WORKER_NS, self.worker_id, "1", ttl=self.ttl)
        self._rounds += 1
        if self._rounds == 1:
            return
        workers = await self.state.items(WORKER_NS)
        share = math.ceil(len(self._channels) / max(1, len(workers)))
        await self._renew(started)
        await self._shed(share)
        await self._acquire(share, started)

    async def _renew(self, started: float) -> None:
        for channel in list(self._confirmed):
            if channel not in self._channels:
                await self._release(channel, "no longer configured")
            elif await self._ops.renew(LEASE_NS, channel, self.worker_id, self.ttl):
                self._confirmed[channel] = started
            else:
                del self._confirmed[channel]
                logger.warning("worker %s lost the lease of %s", self.worker_id, channel)

    async def _shed(self, share: int) -> None:
        mine = [c for c in self._channels if c in self._confirmed]
        for channel in mine[share:]:
            await self._release(channel, f"above the fair share of {share}")

    async def _acquire(self, share: int, started: float) -> None:
        for channel in self._channels:
            if len(self._confirmed) >= share:
                return
            if channel in self._confirmed:
                continue
            taken = await self.state.set_if_absent(LEASE_NS, channel, self.worker_id, self.ttl)
            # A key already holding our id is ours from before a restart under the same id.
            if taken or await self._ops.renew(LEASE_NS, channel, self.worker_id, self.ttl):
                self._confirmed[channel] = started
                logger.info("worker %s took channel %s", self.worker_id, channel)

    async def _release(self, channel: str, why: str) -> None:
        self._confirmed.pop(channel, None)
        await self._ops.release(LEASE_NS, channel, self.worker_id)
        logger.info("worker %s released channel %s (%s)", self.worker_id, channel, why)

    async def release_all(self) -> None:
        """Give every lease back and leave, so others take over without waiting for expiry."""
        try:
            for channel in list(self._confirmed):
                await self._release(channel, "stopping")
            await self.state.delete(WORKER_NS, self.worker_id)
        except StateError as exc:
            logger.warning("worker %s could not release its leases: %s", self.worker_id, exc)
        self._confirmed.clear()
        self._rounds = 0
