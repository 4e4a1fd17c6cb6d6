"""The Redis implementation of :class:`~monitor.core.state.StateStore`, for the distributed mode.

Keys are ``vqm:{deployment}:{ns}:{key}``, so several deployments can share one Redis. While
Redis is away every call raises :class:`~monitor.core.state.StateError` (retriable) at once
instead of hanging, ``ready()`` is False, and the store tries again after a back-off that
grows by the retry policy (``backoff``: :class:`~monitor.core.retry.RetryPolicy`, or its
``(initial, cap)``; jittered, so replicas do not return in step); the first call that gets
through makes it ready again.

    store = RedisStateStore("redis://redis:6379/0", deployment="prod")
    await store.start()
    try:
        if await store.set_if_absent("dedup", "news:7:black", "1", ttl=3600):
            ...
    finally:
        await store.stop()

Beyond the interface it offers ``claim`` and ``release``, compare-and-act primitives that
channel leases (:mod:`stream_ingest.leases`) need: only the holder may extend or drop a key.
Each takes many keys and is one Lua script, so renewing hundreds of leases is one round trip
however busy the caller's event loop is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from monitor.core.retry import RetryPolicy
from monitor.core.state import Claim, StateError, StateStore

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

# Hold every key for ARGV[1] (for ARGV[2] ms) unless another value holds it: extend the ones
# already ours (1), take the free ones (2), leave the others (0). One answer per key, in order.
_CLAIM = """
local out = {}
for i, key in ipairs(KEYS) do
  local held = redis.call('GET', key)
  if held == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    out[i] = 1
  elseif not held then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    out[i] = 2
  else
    out[i] = 0
  end
end
return out
"""
# Delete the keys that still hold ARGV[1]; the number deleted.
_RELEASE = """
local n = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    n = n + redis.call('DEL', key)
  end
end
return n
"""
_GLOB_SPECIAL = "\\*?[]"


def _ms(ttl: float) -> int:
    return max(1, round(ttl * 1000))


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in _GLOB_SPECIAL else c for c in text)


class _Outage:
    """Tracks Redis being away: when to try again, by the retry policy's growing delay."""

    def __init__(self, policy: RetryPolicy, clock: Callable[[], float]) -> None:
        self._policy, self._clock = policy, clock
        self.failures = 0
        self.retry_at = 0.0

    @property
    def down(self) -> bool:
        return self.failures > 0

    def wait_left(self) -> float:
        return max(0.0, self.retry_at - self._clock())

    def failed(self) -> float:
        self.failures += 1
        delay = self._policy.delay(self.failures)
        self.retry_at = self._clock() + delay
        return delay

    def recovered(self) -> bool:
        """Forget the outage; True if there was one."""
        was_down, self.failures = self.down, 0
        return was_down


MAX_CONNECTIONS = 64  # per process: calls take well under a millisecond, so few are needed


class RedisStateStore(StateStore):
    """A :class:`StateStore` on Redis with fail-fast back-off while Redis is away."""

    def __init__(
        self,
        url: str,
        deployment: str,
        timeout: float = 2.0,
        backoff: RetryPolicy | tuple[float, float] = (0.2, 5.0),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.deployment = deployment
        self._prefix = f"vqm:{deployment}:"
        # A pool that waits for a free connection: redis-py's default refuses a call past its
        # 100th connection in use, which read as Redis being away (the outage back-off for
        # every caller) when 200 channels started at once and each read its position.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=timeout,  # waiting for a connection counts like waiting for Redis
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # One quick retry rides over a dropped idle connection; outages are ours to handle.
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=1),
        )
        self._client = aioredis.Redis.from_pool(pool)
        self._outage = _Outage(RetryPolicy.of(backoff), clock=clock)
        self._claim = self._client.register_script(_CLAIM)
        self._release = self._client.register_script(_RELEASE)

    def _key(self, ns: str, key: str) -> str:
        return f"{self._prefix}{ns}:{key}"

    async def _call(self, what: str, op: Callable[[], Awaitable[_T]]) -> _T:
        """Run one Redis operation, turning failures into :class:`StateError`."""
        left = self._outage.wait_left()
        if left > 0:
            raise StateError(f"Redis at {self._where()} is unavailable; next try in {left:.1f} s")
        try:
            result = await op()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            delay = self._outage.failed()
            logger.warning("Redis %s failed (%s); backing off %.1f s", what, exc, delay)
            raise StateError(f"Redis at {self._where()} unavailable during {what}: {exc}") from exc
        except RedisError as exc:
            error = StateError(f"Redis {what} failed: {exc}")
            error.retriable = False
            raise error from exc
        if self._outage.recovered():
            logger.info("Redis at %s is back", self._where())
        return result

    def _where(self) -> str:
        kwargs = self._client.connection_pool.connection_kwargs
        return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"

    async def start(self) -> None:
        """Check the connection once; a Redis that is away is retried on use, not here."""
        if not await self.ready():
            logger.warning("Redis at %s does not answer yet", self._where())

    async def stop(self) -> None:
        await self._client.aclose()

    async def ready(self) -> bool:
        """True when Redis answers a PING now; False while it is away (without waiting)."""
        try:
            return bool(await self._call("ping", self._client.ping))
        except StateError:
            return False

    async def get(self, ns: str, key: str) -> str | None:
        value: Any = await self._call("get", lambda: self._client.get(self._key(ns, key)))
        return value

    async def set(self, ns: str, key: str, value: str, ttl: float | None = None) -> None:
        px = None if ttl is None else _ms(ttl)
        await self._call("set", lambda: self._client.set(self._key(ns, key), value, px=px))

    async def set_if_absent(self, ns: str, key: str, value: str, ttl: float | None = None) -> bool:
        px = None if ttl is None else _ms(ttl)
        stored = await self._call(
            "set_if_absent",
            lambda: self._client.set(self._key(ns, key), value, px=px, nx=True),
        )
        return bool(stored)

    async def delete(self, ns: str, key: str) -> None:
        await self._call("delete", lambda: self._client.delete(self._key(ns, key)))

    async def items(self, ns: str) -> dict[str, str]:
        """SCAN the namespace, then MGET; keys that expire in between are left out."""
        prefix = self._key(ns, "")
        return await self._call("items", lambda: self._items(prefix))

    async def _items(self, prefix: str) -> dict[str, str]:
        keys = [
            k async for k in self._client.scan_iter(match=_glob_escape(prefix) + "*", count=500)
        ]
        if not keys:
            return {}
        values = cast(list[str | None], await self._client.mget(keys))
        return {k[len(prefix) :]: v for k, v in zip(keys, values, strict=True) if v is not None}

    async def claim(self, ns: str, keys: list[str], value: str, ttl: float) -> list[Claim]:
        """Hold each key for ``value`` for ``ttl`` s unless another value holds it, in one
        round trip; one :class:`Claim` per key, in order."""
        if not keys:
            return []
        names = [self._key(ns, key) for key in keys]
        done = await self._call("claim", lambda: self._claim(keys=names, args=[value, _ms(ttl)]))
        return [Claim(int(code)) for code in done]

    async def release(self, ns: str, keys: list[str], value: str) -> int:
        """Delete the keys still holding ``value``, in one round trip; how many were."""
        if not keys:
            return 0
        names = [self._key(ns, key) for key in keys]
        done = await self._call("release", lambda: self._release(keys=names, args=[value]))
        return int(done)
