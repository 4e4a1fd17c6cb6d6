"""Where each channel's ingest got to, kept in the state store for the next follower.

After every segment it publishes, a follower writes the segment's media sequence number (and
where its media time ends) under ``ingest-position:{channel}``. A follower that starts on a
channel, after a hand-over or after taking the channel from a crashed worker, resumes right
after it while that segment is still listed, so nothing between the two followers is lost;
if the playlist has moved past it, the follower reports the gap and starts at the oldest
segment still listed (:mod:`stream_ingest.sources.hls`).

    positions = Positions(store, metrics, ttl=3600)
    await positions.save("news", Position(seq=41, media_end=82.0, published_at=now()))
    resume = await positions.load("news")      # None: start where ``ingest.start`` says

A store that fails, or holds something unreadable, never stops a follower: it is logged and
counted (``vqm_ingest_errors_total{kind="position"}``) and the follower carries on without it.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, ValidationError

from monitor.core.metrics import Metrics
from monitor.core.state import StateError, StateStore, raise_if_cancelled

logger = logging.getLogger(__name__)

POSITION_NS = "ingest-position"
ERROR_KIND = "position"


class Position(BaseModel):
    """The last segment of a channel published on the bus."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int
    media_end: float
    published_at: float


class Positions:
    """Reads and writes channel positions; see the module docstring."""

    def __init__(self, state: StateStore, metrics: Metrics, ttl: float) -> None:
        self._state = state
        self._metrics = metrics
        self._ttl = ttl
        self._failing: set[str] = set()  # channels whose last write failed (log once a run)

    async def load(self, channel_id: str) -> Position | None:
        """The channel's last published position, or None (none kept, or unreadable)."""
        try:
            raw = await self._state.get(POSITION_NS, channel_id)
            raise_if_cancelled()
        except StateError as exc:
            self._failed(channel_id, f"cannot read its position ({exc}); starting afresh")
            return None
        if raw is None:
            return None
        try:
            return Position.model_validate_json(raw)
        except ValidationError as exc:
            self._failed(
                channel_id,
                f"unreadable position {raw[:200]!r} ({exc.error_count()} errors); starting afresh",
            )
            return None

    async def save(self, channel_id: str, position: Position) -> None:
        """Record ``position``; a failure is reported once until a write succeeds again."""
        try:
            await self._state.set(POSITION_NS, channel_id, position.model_dump_json(), self._ttl)
            raise_if_cancelled()
        except StateError as exc:
            self._metrics.ingest_errors.labels(channel=channel_id, kind=ERROR_KIND).inc()
            if channel_id not in self._failing:
                self._failing.add(channel_id)
                logger.warning(
                    "channel %s: cannot record segment %d as published (%s); a follower "
                    "taking over may publish it again",
                    channel_id,
                    position.seq,
                    exc,
                )
            return
        if channel_id in self._failing:
            self._failing.discard(channel_id)
            logger.info("channel %s: recording positions again", channel_id)

    def _failed(self, channel_id: str, what: str) -> None:
        self._metrics.ingest_errors.labels(channel=channel_id, kind=ERROR_KIND).inc()
        logger.warning("channel %s: %s", channel_id, what)
