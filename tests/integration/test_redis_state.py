"""The state store contract, run against both implementations, plus Redis outages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from monitor.core.state import MemoryStateStore, StateError, StateStore
from monitor.core.state_redis import RedisStateStore
from tests.integration.conftest import Service, start_redis, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, namespace: str) -> AsyncIterator[StateStore]:
    if request.param == "memory":
        yield MemoryStateStore()
        return
    redis_store = RedisStateStore(request.getfixturevalue("redis_url"), deployment=namespace)
    await redis_store.start()
    try:
        yield redis_store
    finally:
        await redis_store.stop()


async def test_a_missing_key_reads_as_none(store: StateStore) -> None:
    assert await store.get("alerts", "nothing") is None


async def test_a_value_set_reads_back_and_a_second_set_overwrites_it(store: StateStore) -> None:
    await store.set("alerts", "news", "1")
    assert await store.get("alerts", "news") == "1"
    await store.set("alerts", "news", "2")
    assert await store.get("alerts", "news") == "2"


async def test_set_if_absent_stores_only_the_first_time(store: StateStore) -> None:
    assert await store.set_if_absent("dedup", "news:7:black", "first") is True
    assert await store.set_if_absent("dedup", "news:7:black", "second") is False
    assert await store.get("dedup", "news:7:black") == "first"


async def test_a_key_expires_after_its_ttl_and_can_then_be_taken_again(store: StateStore) -> None:
    assert await store.set_if_absent("dedup", "k", "a", ttl=0.3) is True
    await store.set("alerts", "k", "b", ttl=0.3)
    assert await store.get("dedup", "k") == "a"
    await asyncio.sleep(0.45)
    assert await store.get("dedup", "k") is None
    assert await store.get("alerts", "k") is None
    assert await store.set_if_absent("dedup", "k", "c", ttl=10) is True


async def test_a_set_without_ttl_clears_an_earlier_ttl(store: StateStore) -> None:
    await store.set("channels", "news", "up", ttl=0.2)
    await store.set("channels", "news", "up")
    await asyncio.sleep(0.3)
    assert await store.get("channels", "news") == "up"


async def test_delete_removes_a_key_and_ignores_a_missing_one(store: StateStore) -> None:
    await store.set("alerts", "news", "1")
    await store.delete("alerts", "news")
    await store.delete("alerts", "never-there")
    assert await store.get("alerts", "news") is None


async def test_items_lists_the_live_keys_of_one_namespace_only(store: StateStore) -> None:
    await store.set("channels", "news", "up")
    await store.set("channels", "sport:hd", "down")
    await store.set("channels", "gone", "x", ttl=0.1)
    await store.set("channels-old", "other", "x")
    await store.set("alerts", "news", "open")
    await asyncio.sleep(0.2)
    assert await store.items("channels") == {"news": "up", "sport:hd": "down"}
    assert await store.items("empty") == {}


async def test_glob_characters_in_names_match_only_themselves(store: StateStore) -> None:
    await store.set("a*", "k?[1]", "literal")
    await store.set("ab", "k1", "other")
    assert await store.items("a*") == {"k?[1]": "literal"}


async def test_two_deployments_on_one_redis_do_not_see_each_other(
    redis_url: str, namespace: str
) -> None:
    first = RedisStateStore(redis_url, deployment=f"{namespace}-a")
    second = RedisStateStore(redis_url, deployment=f"{namespace}-b")
    try:
        await first.set("alerts", "news", "a")
        assert await second.get("alerts", "news") is None
        assert await second.items("alerts") == {}
    finally:
        await first.stop()
        await second.stop()


async def test_keys_are_prefixed_with_the_deployment_and_namespace(
    redis_url: str, namespace: str
) -> None:
    store = RedisStateStore(redis_url, deployment=namespace)
    try:
        await store.set("alerts", "news", "1")
        assert await store._client.get(f"vqm:{namespace}:alerts:news") == "1"
    finally:
        await store.stop()


async def test_while_redis_is_away_calls_fail_fast_and_readiness_returns_with_it(
    private_redis: Service, namespace: str
) -> None:
    url = f"redis://{private_redis.address}/0"
    store = RedisStateStore(url, deployment=namespace, timeout=0.5, backoff=(0.1, 0.5))
    try:
        await store.set("alerts", "news", "1")
        assert await store.ready() is True

        private_redis.stop()
        with pytest.raises(StateError) as err:
            await store.get("alerts", "news")
        assert err.value.retriable is True
        assert await store.ready() is False
        with pytest.raises(StateError, match="unavailable"):
            await asyncio.wait_for(store.set("alerts", "news", "2"), 1.0)

        restarted = start_redis(private_redis.port)
        try:
            assert await wait_for(store.ready, timeout=5)
            await store.set("alerts", "news", "3")
            assert await store.get("alerts", "news") == "3"
        finally:
            restarted.stop()
    finally:
        await store.stop()


async def test_hundreds_of_calls_at_once_wait_for_a_connection_instead_of_failing(
    store: StateStore,
) -> None:
    """Two hundred channels starting together each read their position at once: a pool that
    refused the call past its 100th connection ("Too many connections") tripped the outage
    back-off, and half the channels started without their position (segments lost)."""
    await store.set("pos", "news", "1")
    results = await asyncio.gather(*(store.get("pos", "news") for _ in range(400)))
    assert results == ["1"] * 400
    assert await store.ready()
