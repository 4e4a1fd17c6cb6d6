"""While Redis is away the store fails fast, and tries again after the retry policy's delay."""

from __future__ import annotations

import pytest

from monitor.core.retry import RetryPolicy
from monitor.core.state import StateError
from monitor.core.state_redis import RedisStateStore
from tests.conftest import free_port


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_calls_fail_fast_until_the_policys_delay_has_passed_and_it_grows_per_outage() -> None:
    clock = Clock()
    policy = RetryPolicy(initial=1.0, cap=4.0, jitter=0.0)
    store = RedisStateStore(
        f"redis://127.0.0.1:{free_port()}/0",
        deployment="t",
        timeout=0.5,
        backoff=policy,
        clock=clock,
    )
    try:
        waits = []
        for _ in range(4):
            with pytest.raises(StateError, match="unavailable during get"):
                await store.get("ns", "k")  # reaches for Redis and finds it away
            waits.append(store._outage.wait_left())
            with pytest.raises(StateError, match="next try in"):
                await store.get("ns", "k")  # within the back-off: no connection attempted
            clock.now += waits[-1]
        assert waits == [1.0, 2.0, 4.0, 4.0]
    finally:
        await store.stop()


async def test_the_older_initial_and_cap_pair_still_configures_the_back_off() -> None:
    store = RedisStateStore("redis://127.0.0.1:1/0", deployment="t", backoff=(0.1, 0.5))
    try:
        assert store._outage._policy == RetryPolicy(initial=0.1, cap=0.5)
    finally:
        await store.stop()
