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

A round renews every lease in one call (:meth:`LeaseOps.claim`, one Lua script on Redis), so
its cost does not grow with the number of channels and a busy event loop delays it by one
wake-up, not by one per channel. Renewal also takes back a lease of ours that expired while
nobody else took it: a worker without a competitor never loses its own channels.

Stopping ``run`` with its event releases every lease at once (a clean hand-off); a crash, or
cancelling the task, leaves them to expire. ``owned`` only reports leases confirmed within the
last ``ttl``, counted from before the renewal was sent, so a worker cut off from the store
stops claiming its channels before the others may take them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

from monitor.core.retry import pause
from monitor.core.state import (
    Claim,
    MemoryStateStore,
    StateError,
    StateStore,
    raise_if_cancelled,
)

logger = logging.getLogger(__name__)

LEASE_NS = "lease"
WORKER_NS = "lease-workers"


@runtime_checkable
class LeaseOps(Protocol):
    """Compare-and-act on many keys at once: only the holder of ``value`` may extend or drop
    a key.

    :class:`~monitor.core.state_redis.RedisStateStore` implements it (Lua scripts, one round
    trip per call); a good candidate for the :class:`~monitor.core.state.StateStore`
    interface itself.
    """

    async def claim(self, ns: str, keys: list[str], value: str, ttl: float) -> list[Claim]: ...

    async def release(self, ns: str, keys: list[str], value: str) -> int: ...


class MemoryLeaseOps:
    """:class:`LeaseOps` for :class:`MemoryStateStore`.

    Its methods never suspend, so a read followed by a write here runs without any other
    task in between: atomic within the one event loop that uses it.
    """

    def __init__(self, store: MemoryStateStore) -> None:
        self._store = store

    async def claim(self, ns: str, keys: list[str], value: str, ttl: float) -> list[Claim]:
        return [await self._claim_one(ns, key, value, ttl) for key in keys]

    async def _claim_one(self, ns: str, key: str, value: str, ttl: float) -> Claim:
        held = await self._store.get(ns, key)
        if held is not None and held != value:
            return Claim.HELD_BY_OTHER
        await self._store.set(ns, key, value, ttl=ttl)
        return Claim.EXTENDED if held == value else Claim.TAKEN

    async def release(self, ns: str, keys: list[str], value: str) -> int:
        released = 0
        for key in keys:
            if await self._store.get(ns, key) == value:
                await self._store.delete(ns, key)
                released += 1
        return released


def lease_ops(store: StateStore) -> LeaseOps:
    """The store's own compare-and-act primitives, or the memory ones; else ``TypeError``."""
    if isinstance(store, LeaseOps):
        return store
    if isinstance(store, MemoryStateStore):
        return MemoryLeaseOps(store)
    raise TypeError(f"{type(store).__name__} has no claim/release; leases need them")


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

    @property
    def rounds(self) -> int:
        """Rounds run since the last start (the first only announces this worker)."""
        return self._rounds

    async def owned(self) -> set[str]:
        """Channels whose lease this worker confirmed within the last ``ttl``."""
        now = self._clock()
        return {c for c, at in self._confirmed.items() if now - at < self.ttl}

    async def run(self, stop: asyncio.Event) -> None:
        """Renew and balance every ``ttl / 3`` until ``stop``; then release everything.

        Rounds start every ``ttl / 3`` from the start of the previous one, so a slow round
        does not stretch the time between two renewals.
        """
        while not stop.is_set():
            started = self._clock()
            try:
                await self.round()
            except StateError as exc:
                logger.warning("lease round of %s failed: %s", self.worker_id, exc)
            except Exception:
                logger.exception("lease round of %s failed", self.worker_id)
            raise_if_cancelled()
            left = self.period - (self._clock() - started)
            await pause(stop, max(0.0, left))
        await self.release_all()

    async def round(self) -> None:
        """One pass: renew, announce, shed surplus, take free channels up to the fair share.

        Renewal comes first, before anything else waits on the store, so what this worker
        holds is confirmed as soon as the round starts. The first round only announces, so
        workers starting together see each other before anyone takes channels.
        """
        configured = set(self._channels)
        await self._release(
            [c for c in self._confirmed if c not in configured], "no longer configured"
        )
        await self._renew()
        await self.state.set(WORKER_NS, self.worker_id, "1", ttl=self.ttl)
        self._rounds += 1
        if self._rounds == 1:
            return
        workers = await self.state.items(WORKER_NS)
        share = math.ceil(len(self._channels) / max(1, len(workers)))
        await self._shed(share)
        await self._acquire(share)

    async def _claim(self, channels: list[str]) -> dict[str, Claim]:
        """Claim ``channels`` in one call; those we hold now count as confirmed from before
        the call was sent (the store's expiry starts later, never earlier)."""
        sent = self._clock()
        results = await self._ops.claim(LEASE_NS, channels, self.worker_id, self.ttl)
        for channel, result in zip(channels, results, strict=True):
            if result != Claim.HELD_BY_OTHER:
                self._confirmed[channel] = sent
        return dict(zip(channels, results, strict=True))

    async def _renew(self) -> None:
        if not self._confirmed:
            return
        for channel, result in (await self._claim(list(self._confirmed))).items():
            if result == Claim.HELD_BY_OTHER:
                del self._confirmed[channel]
                logger.warning("worker %s lost the lease of %s", self.worker_id, channel)
            elif result == Claim.TAKEN:
                logger.warning(
                    "worker %s: the lease of %s expired before it was renewed; taken again",
                    self.worker_id,
                    channel,
                )

    async def _shed(self, share: int) -> None:
        mine = [c for c in self._channels if c in self._confirmed]
        await self._release(mine[share:], f"above the fair share of {share}")

    async def _acquire(self, share: int) -> None:
        """Claim free channels, in this worker's order of preference, up to ``share``: one
        call per batch of as many as are missing, until the share is met or none is left."""
        tried: set[str] = set()
        while (missing := share - len(self._confirmed)) > 0:
            batch = [c for c in self._channels if c not in self._confirmed and c not in tried]
            batch = batch[:missing]
            if not batch:
                return
            tried.update(batch)
            # A key already holding our id is ours from before a restart under the same id.
            for channel, result in (await self._claim(batch)).items():
                if result != Claim.HELD_BY_OTHER:
                    logger.info("worker %s took channel %s", self.worker_id, channel)

    async def _release(self, channels: list[str], why: str) -> None:
        if not channels:
            return
        for channel in channels:
            self._confirmed.pop(channel, None)
        await self._ops.release(LEASE_NS, channels, self.worker_id)
        for channel in channels:
            logger.info("worker %s released channel %s (%s)", self.worker_id, channel, why)

    async def release_all(self) -> None:
        """Give every lease back and leave, so others take over without waiting for expiry."""
        try:
            await self._release(list(self._confirmed), "stopping")
            await self.state.delete(WORKER_NS, self.worker_id)
        except StateError as exc:
            logger.warning("worker %s could not release its leases: %s", self.worker_id, exc)
        self._confirmed.clear()
        self._rounds = 0
