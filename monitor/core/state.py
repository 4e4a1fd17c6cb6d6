"""The state store: one small key-value interface, in memory here, Redis beside it.

Keys live in namespaces (``alerts``, ``channels``, ``dedup``...). Values are strings (JSON
made by the caller). ``set_if_absent`` with a TTL is the idempotency primitive: a replayed
detection finds its key taken and does nothing.

    store = MemoryStateStore()
    if await store.set_if_absent("dedup", "news:7:black", "1", ttl=3600):
        ...  # first time this (channel, seq, detector) is seen
"""

from __future__ import annotations

import abc
import asyncio
import enum
import time
from collections.abc import Callable

from monitor.core.errors import StateError

__all__ = ["Claim", "MemoryStateStore", "StateError", "StateStore", "raise_if_cancelled"]


def raise_if_cancelled() -> None:
    """Raise the cancel a store client absorbed, so the cancelled task really stops.

    redis-py (8.1) can return a command's reply normally although the task awaiting it was
    cancelled meanwhile (when the cancel lands as the reply arrives); a loop that only stops
    on ``CancelledError`` then runs on, and whoever awaits the task waits forever. Call it
    after a store call in such a loop.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class Claim(enum.IntEnum):
    """What claiming a key for a value found (leases: a channel's key for a worker)."""

    HELD_BY_OTHER = 0  #: another value holds the key; left as it is
    EXTENDED = 1  #: the key held the value already; its TTL starts again
    TAKEN = 2  #: the key was free; it holds the value now


class StateStore(abc.ABC):
    """Namespaced string key-value store with TTLs."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Connect."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Disconnect."""

    async def ready(self) -> bool:
        """True when the store answers now (for /readyz)."""
        return True

    @abc.abstractmethod
    async def get(self, ns: str, key: str) -> str | None: ...

    @abc.abstractmethod
    async def set(self, ns: str, key: str, value: str, ttl: float | None = None) -> None: ...

    @abc.abstractmethod
    async def set_if_absent(self, ns: str, key: str, value: str, ttl: float | None = None) -> bool:
        """Store only when the key is absent; True when this call stored it."""

    @abc.abstractmethod
    async def delete(self, ns: str, key: str) -> None: ...

    @abc.abstractmethod
    async def items(self, ns: str) -> dict[str, str]:
        """Every live key of a namespace with its value."""


class MemoryStateStore(StateStore):
    """Dict-backed store for the one-process mode; TTLs are honoured on read."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._data: dict[tuple[str, str], tuple[str, float | None]] = {}
        self._clock = clock or time.monotonic

    def _live(self, ns: str, key: str) -> str | None:
        entry = self._data.get((ns, key))
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and self._clock() >= expires:
            del self._data[(ns, key)]
            return None
        return value

    def _expiry(self, ttl: float | None) -> float | None:
        return None if ttl is None else self._clock() + ttl

    async def get(self, ns: str, key: str) -> str | None:
        return self._live(ns, key)

    async def set(self, ns: str, key: str, value: str, ttl: float | None = None) -> None:
        self._data[(ns, key)] = (value, self._expiry(ttl))

    async def set_if_absent(self, ns: str, key: str, value: str, ttl: float | None = None) -> bool:
        if self._live(ns, key) is not None:
            return False
        self._data[(ns, key)] = (value, self._expiry(ttl))
        return True

    async def delete(self, ns: str, key: str) -> None:
        self._data.pop((ns, key), None)

    async def items(self, ns: str) -> dict[str, str]:
        keys = [k for (n, k) in list(self._data) if n == ns]
        return {k: v for k in keys if (v := self._live(ns, k)) is not None}
