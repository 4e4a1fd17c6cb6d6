"""The bounded sample store: segments a detector flagged, kept so that operator feedback on
their alerts can be exported as training data.

The inference worker keeps each segment in which some detector found a defect (the segment's
bytes as ingest fetched them: every frame and the audio) with what it was (channel, media time
span, which detectors); ``vqm label export`` later finds the segments under a labelled alert's
span. Four bounds keep it from filling the disk, applied after every write:

* **retention**: a sample older than ``retention`` seconds goes;
* **per-channel quota**: a channel keeps at most ``per_channel`` samples, so one channel that
  flaps all night cannot push every other channel's samples out;
* **size cap**: all samples together stay under ``max_bytes``;
* **LRU**: within the last two, the sample used longest ago (stored, or read by an export)
  goes first.

One directory, one writing process (each inference worker its own); files are written
beside their final name and renamed into place, so a crash leaves no half sample.

    store = SampleStore(Path("/var/lib/vqm/samples"), SampleLimits(per_channel=100))
    store.put(SampleMeta(channel_id="news", seq=7, media_start=14.0, media_end=16.0,
                         detectors=["block_corruption"]), payload)
    [m.seq for m in store.overlapping("news", 13.0, 15.0)]    # marks them used
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

logger = logging.getLogger(__name__)

EvictHook = Callable[[str, "SampleMeta"], None]  # reason, sample


class SampleLimits(BaseModel):
    """The store's bounds (the deployment settings ``VQM_SAMPLES_*`` give them)."""

    model_config = ConfigDict(extra="forbid")

    per_channel: int = Field(default=200, ge=1, description="Most samples one channel keeps.")
    max_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1, description="Most bytes all samples together take."
    )
    retention: float = Field(
        default=14 * 24 * 3600.0, gt=0, description="Seconds a sample is kept at most."
    )


class SampleMeta(BaseModel):
    """What a kept segment was; stored beside its bytes."""

    model_config = ConfigDict(extra="forbid")

    channel_id: str
    seq: int = Field(ge=0)
    media_start: float = Field(description="Stream PTS seconds the analysed span began.")
    media_end: float
    detectors: list[str] = Field(default_factory=list, description="Those that flagged it.")
    container: str = "mpegts"
    size: int = Field(default=0, ge=0, description="Bytes of the segment.")
    stored_at: float = 0.0
    used_at: float = 0.0
    # Annotation candidates only (container "png": one analysed frame, see
    # monitor.inference.candidate): what selection reads without decoding anything.
    frame_time: float | None = None
    model_version: str | None = None
    score: float | None = Field(default=None, description="The frame's decision value.")
    threshold: float | None = Field(default=None, description="Where score is flagged.")
    embedding: list[float] | None = None
    region_prob: list[list[float]] | None = None

    @property
    def key(self) -> tuple[str, int]:
        return self.channel_id, self.seq


def _channel_dir(channel_id: str) -> str:
    """A directory name for any channel id: readable, and distinct for distinct ids."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", channel_id)[:64]
    return f"{safe}-{hashlib.sha1(channel_id.encode()).hexdigest()[:8]}"


class SampleStore:
    """See the module docstring. Thread-safe; every method blocks on disk (call it from a
    thread in async code). ``clock`` is wall-clock epoch seconds."""

    def __init__(
        self,
        root: Path,
        limits: SampleLimits | None = None,
        clock: Callable[[], float] = time.time,
        on_evict: EvictHook | None = None,
    ) -> None:
        self.root = root
        self.limits = limits or SampleLimits()
        self._clock = clock
        self._on_evict = on_evict
        self._lock = threading.Lock()
        self._index: dict[tuple[str, int], SampleMeta] = {}
        self._load()

    def _paths(self, channel_id: str, seq: int) -> tuple[Path, Path]:
        base = self.root / _channel_dir(channel_id) / str(seq)
        return base.with_suffix(".bin"), base.with_suffix(".json")

    def _load(self) -> None:
        """The index from the metadata on disk; an unreadable or orphaned entry is removed."""
        for meta_path in self.root.glob("*/*.json"):
            try:
                meta = SampleMeta.model_validate_json(meta_path.read_text())
            except (OSError, ValidationError) as exc:
                logger.warning("sample %s unreadable (%s); removing it", meta_path, exc)
                meta_path.unlink(missing_ok=True)
                meta_path.with_suffix(".bin").unlink(missing_ok=True)
                continue
            if not self._paths(*meta.key)[0].exists():
                logger.warning("sample %s lost its segment; removing it", meta_path)
                meta_path.unlink(missing_ok=True)
                continue
            self._index[meta.key] = meta

    def put(self, meta: SampleMeta, payload: bytes) -> SampleMeta:
        """Keep a segment (replacing one of the same channel and seq), then apply the bounds."""
        at = self._clock()
        meta = meta.model_copy(update={"size": len(payload), "stored_at": at, "used_at": at})
        data_path, meta_path = self._paths(*meta.key)
        data_path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(data_path, payload)
        _write_atomic(meta_path, meta.model_dump_json().encode())
        with self._lock:
            self._index[meta.key] = meta
            self._evict()
        return meta

    def overlapping(self, channel_id: str, start: float, end: float) -> list[SampleMeta]:
        """The channel's samples whose span meets [start, end], by seq; each marked used."""
        at = self._clock()
        with self._lock:
            found = [
                m
                for m in self._index.values()
                if m.channel_id == channel_id and m.media_start <= end and m.media_end >= start
            ]
            for meta in found:
                self._index[meta.key] = meta.model_copy(update={"used_at": at})
                used = self._index[meta.key].model_dump_json().encode()
                _write_atomic(self._paths(*meta.key)[1], used)
            return sorted((self._index[m.key] for m in found), key=lambda m: m.seq)

    def payload(self, meta: SampleMeta) -> bytes:
        return self._paths(*meta.key)[0].read_bytes()

    def read(self, channel_id: str, seq: int) -> tuple[SampleMeta, bytes] | None:
        """One sample's metadata and bytes as they are on disk now; None when it is not there
        (evicted, or never kept).

        Read from disk, not from the index: the API may open the store in another process than
        the inference worker that writes it, and must see samples kept since. A reader writes
        nothing, so the sample is not marked used."""
        data_path, meta_path = self._paths(channel_id, seq)
        try:
            meta = SampleMeta.model_validate_json(meta_path.read_bytes())
            payload = data_path.read_bytes()
        except FileNotFoundError:  # never kept, or evicted (perhaps between the two reads)
            return None
        except ValidationError as exc:
            logger.warning("sample %s unreadable (%s)", meta_path, exc)
            return None
        if meta.key != (channel_id, seq):  # another id that maps to the same directory name
            return None
        return meta, payload

    def all(self) -> list[SampleMeta]:
        with self._lock:
            return sorted(self._index.values(), key=lambda m: (m.channel_id, m.seq))

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return sum(m.size for m in self._index.values())

    def evict(self) -> None:
        """Apply the bounds now (retention runs on while nothing is written)."""
        with self._lock:
            self._evict()

    def _evict(self) -> None:
        at = self._clock()
        for meta in [m for m in self._index.values() if at - m.stored_at > self.limits.retention]:
            self._drop(meta, "retention")
        by_channel: dict[str, list[SampleMeta]] = {}
        for meta in self._index.values():
            by_channel.setdefault(meta.channel_id, []).append(meta)
        for metas in by_channel.values():
            excess = len(metas) - self.limits.per_channel
            for meta in sorted(metas, key=_lru)[: max(0, excess)]:
                self._drop(meta, "quota")
        total = sum(m.size for m in self._index.values())
        for meta in sorted(self._index.values(), key=_lru):
            if total <= self.limits.max_bytes:
                break
            total -= meta.size
            self._drop(meta, "size")

    def _drop(self, meta: SampleMeta, reason: str) -> None:
        del self._index[meta.key]
        for path in self._paths(*meta.key):
            path.unlink(missing_ok=True)
        logger.debug("sample %s:%d evicted (%s)", meta.channel_id, meta.seq, reason)
        if self._on_evict is not None:
            self._on_evict(reason, meta)


def _lru(meta: SampleMeta) -> tuple[float, float, int]:
    return meta.used_at, meta.stored_at, meta.seq


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
