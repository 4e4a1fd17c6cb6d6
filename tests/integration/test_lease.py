"""Channel leases among ingest workers, on Redis and on the memory store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis

from monitor.core.state import Claim, MemoryStateStore, StateStore
from monitor.core.state_redis import RedisStateStore
from stream_ingest.leases import LEASE_NS, ChannelLeases, lease_ops
from tests.integration.conftest import Service, cancel_and_wait, wait_for

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

    def __init__(
        self, store: StateStore, worker_id: str, channels: list[str] = CHANNELS, **kwargs: Any
    ) -> None:
        self.leases = ChannelLeases(store, worker_id, ttl=TTL, channels=channels, **kwargs)
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.leases.run(self.stop))

    async def owned(self) -> set[str]:
        return await self.leases.owned()

    async def crash(self) -> None:
        """Stop renewing without releasing anything, like a killed process."""
        await cancel_and_wait(self.task)

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
    assert await ops.claim(LEASE_NS, ["news"], "b", 10) == [Claim.HELD_BY_OTHER]
    assert await ops.release(LEASE_NS, ["news"], "b") == 0
    assert await ops.claim(LEASE_NS, ["news", "sport"], "a", 10) == [Claim.EXTENDED, Claim.TAKEN]

    async def outlived_the_first_ttl() -> bool:
        return time.monotonic() - claimed > 0.5

    claimed = time.monotonic()
    assert await wait_for(outlived_the_first_ttl, timeout=2, interval=0.05)
    assert await store.get(LEASE_NS, "news") == "a", "the claim extended the TTL"
    assert await ops.release(LEASE_NS, ["news", "sport"], "a") == 2
    assert await store.get(LEASE_NS, "news") is None
    assert await ops.claim(LEASE_NS, ["news"], "b", 10) == [Claim.TAKEN], "a free key is taken"


MANY = [f"ch{i:03d}" for i in range(240)]


async def _hog_the_loop(burst: float, stop: asyncio.Event) -> None:
    """CPU-bound work on the event loop in short bursts, as 200 followers parsing playlists
    and framing segments are: every await elsewhere waits up to ``burst`` for its turn."""
    while not stop.is_set():
        until = time.monotonic() + burst
        while time.monotonic() < until:
            pass
        await asyncio.sleep(0.005)


def _command_calls(client: redis.Redis) -> dict[str, int]:
    """Calls per command since the server started (INFO commandstats), INFO itself left out."""
    stats = client.info("commandstats")
    return {k: v["calls"] for k, v in stats.items() if k != "cmdstat_info"}


async def test_one_worker_keeps_240_channels_renewing_them_in_one_call_while_its_loop_is_busy(
    private_redis: Service,
) -> None:
    store = RedisStateStore(f"redis://{private_redis.address}/0", deployment="busy")
    counter = redis.Redis(host="127.0.0.1", port=private_redis.port)
    worker = Worker(store, "lone", channels=MANY)
    hog_stop = asyncio.Event()
    hogs = [asyncio.create_task(_hog_the_loop(0.02, hog_stop)) for _ in range(2)]
    try:

        async def owns_all() -> bool:
            return await worker.owned() == set(MANY)

        assert await wait_for(owns_all, timeout=10, interval=0.05)
        before, rounds_before = _command_calls(counter), worker.leases.rounds
        dropped: list[int] = []

        async def several_lease_periods_kept() -> bool:
            owned = await worker.owned()
            if owned != set(MANY):
                dropped.append(len(MANY) - len(owned))
            return worker.leases.rounds >= rounds_before + 4 * 3  # four lease periods

        assert await wait_for(several_lease_periods_kept, timeout=40 * TTL, interval=0.05)
        rounds = worker.leases.rounds - rounds_before
        after = _command_calls(counter)
    finally:
        hog_stop.set()
        await asyncio.gather(*hogs)
        await worker.crash()
        await store.stop()
        counter.close()
    assert dropped == [], "a worker with no competitor never loses its own channels"
    sent = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    # One renewal script per round (a round in flight at either reading may move it by one);
    # INFO also counts the GET and PEXPIRE the script runs inside Redis, so those are not
    # round trips. What the client sends besides: announce (SET), list workers (SCAN, MGET).
    assert abs(sent["cmdstat_evalsha"] - rounds) <= 1, (sent, rounds)
    others = sent["cmdstat_set"] + sent["cmdstat_scan"] + sent["cmdstat_mget"]
    assert others <= 3 * (rounds + 1), (sent, rounds)
