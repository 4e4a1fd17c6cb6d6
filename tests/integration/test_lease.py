"""Channel leases among ingest workers, on Redis and on the memory store."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from monitor.core.state import MemoryStateStore, StateStore
from monitor.core.state_redis import RedisStateStore
from stream_ingest.leases import LEASE_NS, ChannelLeases, lease_ops
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

TTL = 1.2
CHANNELS = [f"ch{i}" for i in range(6)]
StoreFactory = Callable[[], StateStore]


@pytest.fixture(params=["memory", "redis"])
async def new_store(request: pytest.FixtureRequest, namespace: str) -> AsyncIterator[StoreFactory]:
    """Makes one store per worker, all sharing the same data, as separate processes would."""
    made: list[RedisStateStore] = []
    if request.param == "memory":
        shared = MemoryStateStore()
        yield lambda: shared
        return
    url = request.getfixturevalue("redis_url")

    def make() -> StateStore:
        made.append(RedisStateStore(url, deployment=namespace))
        return made[-1]

    yield make
    for store in made:
        await store.stop()


class Worker:
    """A ChannelLeases with its running loop, as one ingest process holds it."""

    def __init__(self, store: StateStore, worker_id: str, **kwargs: Any) -> None:
        self.leases = ChannelLeases(store, worker_id, ttl=TTL, channels=CHANNELS, **kwargs)
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.leases.run(self.stop))

    async def owned(self) -> set[str]:
        return await self.leases.owned()

    async def crash(self) -> None:
        """Stop renewing without releasing anything, like a killed process."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def shutdown(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 2)


@pytest.fixture
async def workers() -> AsyncIterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        await worker.crash()


async def _split_evenly(a: Worker, b: Worker) -> bool:
    mine, theirs = await a.owned(), await b.owned()
    return len(mine) == len(theirs) == 3 and mine | theirs == set(CHANNELS)


async def test_two_workers_split_six_channels_three_each(
    new_store: StoreFactory, workers: list[Worker]
) -> None:
    a, b = Worker(new_store(), "a"), Worker(new_store(), "b")
    workers += [a, b]
    assert await wait_for(lambda: _split_evenly(a, b), timeout=6)


async def test_a_dead_workers_channels_move_to_the_other_within_two_lease_periods(
    new_store: StoreFactory, workers: list[Worker]
) -> None:
    a, b = Worker(new_store(), "a"), Worker(new_store(), "b")
    workers += [a, b]
    assert await wait_for(lambda: _split_evenly(a, b), timeout=6)

    await b.crash()
    died = time.monotonic()

    async def a_owns_all() -> bool:
        return await a.owned() == set(CHANNELS)

    assert await wait_for(a_owns_all, timeout=2 * TTL, interval=0.05)
    assert time.monotonic() - died < 2 * TTL
    assert await b.owned() == set(), "the dead worker no longer claims its expired leases"


async def test_a_clean_stop_hands_channels_over_without_waiting_for_expiry(
    new_store: StoreFactory, workers: list[Worker]
) -> None:
    a, b = Worker(new_store(), "a"), Worker(new_store(), "b")
    workers += [a, b]
    assert await wait_for(lambda: _split_evenly(a, b), timeout=6)

    await b.shutdown()
    stopped = time.monotonic()

    async def a_owns_all() -> bool:
        return await a.owned() == set(CHANNELS)

    assert await wait_for(a_owns_all, timeout=2 * TTL, interval=0.05)
    assert time.monotonic() - stopped < TTL, "released leases are taken at the next round"


async def test_a_worker_that_joins_later_gets_its_share_from_the_first(
    new_store: StoreFactory, workers: list[Worker]
) -> None:
    a = Worker(new_store(), "a")
    workers.append(a)

    async def a_owns_all() -> bool:
        return await a.owned() == set(CHANNELS)

    assert await wait_for(a_owns_all, timeout=4)
    b = Worker(new_store(), "b")
    workers.append(b)
    assert await wait_for(lambda: _split_evenly(a, b), timeout=6)


async def test_only_the_holder_can_renew_or_release_a_lease(new_store: StoreFactory) -> None:
    store = new_store()
    ops = lease_ops(store)
    assert await store.set_if_absent(LEASE_NS, "news", "a", ttl=0.4)
    assert await ops.renew(LEASE_NS, "news", "b", 10) is False
    assert await ops.release(LEASE_NS, "news", "b") is False
    assert await ops.renew(LEASE_NS, "news", "a", 10) is True
    await asyncio.sleep(0.5)
    assert await store.get(LEASE_NS, "news") == "a", "renewal extended the TTL"
    assert await ops.release(LEASE_NS, "news", "a") is True
    assert await store.get(LEASE_NS, "news") is None
    assert await ops.renew(LEASE_NS, "news", "a", 10) is False, "an expired lease stays lost"
