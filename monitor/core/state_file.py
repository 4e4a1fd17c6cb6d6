"""A :class:`~monitor.core.state.StateStore` in one local JSON file, for what the one-process
mode must keep across a restart (operator feedback) without a Redis.

Every change rewrites the file (a temporary file beside it, then ``os.replace``), so a crash
leaves the old or the new content, never half of one. It is meant for small, rarely written
namespaces: a few thousand records, written by people clicking. TTLs are wall-clock epoch
seconds, so they run on while the process is down.

    store = FileStateStore(Path("~/.local/share/vqm/feedback.json").expanduser())
    await store.start()               # reads the file; an unreadable one is an error naming it
    await store.set("feedback", "a1", '{"verdict": "false_alarm"}')
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from monitor.core.state import StateError, StateStore

logger = logging.getLogger(__name__)

Entry = tuple[str, float | None]  # value, expiry (epoch s) or None


class FileStateStore(StateStore):
    """See the module docstring; ``clock`` is wall-clock epoch seconds."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._data: dict[str, dict[str, Entry]] = {}
        self._lock = asyncio.Lock()
        self._loaded = False

    async def start(self) -> None:
        self._data = await asyncio.to_thread(self._read)
        self._loaded = True

    def _read(self) -> dict[str, dict[str, Entry]]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise StateError(f"{self.path}: state file unreadable: {exc}") from exc
        if not isinstance(raw, dict):
            raise StateError(f"{self.path}: state file is not a JSON object")
        try:
            return {
                ns: {key: (str(v[0]), v[1]) for key, v in keys.items()} for ns, keys in raw.items()
            }
        except (AttributeError, IndexError, TypeError) as exc:
            raise StateError(f"{self.path}: state file has an unknown layout: {exc}") from exc

    def _write(self, snapshot: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(snapshot)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def _save(self) -> None:
        snapshot = json.dumps(self._data, separators=(",", ":"))
        try:
            await asyncio.to_thread(self._write, snapshot)
        except OSError as exc:
            raise StateError(f"{self.path}: cannot write state: {exc}") from exc

    def _check_loaded(self) -> None:
        if not self._loaded:
            raise StateError(f"{self.path}: store used before start()")

    def _live(self, ns: str, key: str) -> str | None:
        entry = self._data.get(ns, {}).get(key)
        if entry is None:
            return None
        value, expires = entry
        return None if expires is not None and self._clock() >= expires else value

    async def get(self, ns: str, key: str) -> str | None:
        self._check_loaded()
        return self._live(ns, key)

    async def set(self, ns: str, key: str, value: str, ttl: float | None = None) -> None:
        self._check_loaded()
        async with self._lock:
            expires = None if ttl is None else self._clock() + ttl
            self._data.setdefault(ns, {})[key] = (value, expires)
            self._drop_expired()
            await self._save()

    async def set_if_absent(self, ns: str, key: str, value: str, ttl: float | None = None) -> bool:
        self._check_loaded()
        async with self._lock:
            if self._live(ns, key) is not None:
                return False
            expires = None if ttl is None else self._clock() + ttl
            self._data.setdefault(ns, {})[key] = (value, expires)
            await self._save()
            return True

    async def delete(self, ns: str, key: str) -> None:
        self._check_loaded()
        async with self._lock:
            if self._data.get(ns, {}).pop(key, None) is not None:
                await self._save()

    async def items(self, ns: str) -> dict[str, str]:
        self._check_loaded()
        keys = list(self._data.get(ns, {}))
        return {k: v for k in keys if (v := self._live(ns, k)) is not None}

    def _drop_expired(self) -> None:
        """Forget expired entries on write, so the file does not grow with dead ones."""
        at = self._clock()
        for keys in self._data.values():
            for key in [k for k, (_, exp) in keys.items() if exp is not None and at >= exp]:
                del keys[key]
