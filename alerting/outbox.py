"""At-least-once, idempotent delivery of alert transitions to notifiers.

The alert engine hands each transition to :meth:`Outbox.enqueue` (or uses :meth:`Outbox.listener`
as a listener); :meth:`Outbox.run` delivers in the background.

    outbox = Outbox(state, build_notifiers(config, client), OutboxMetrics(metrics=metrics))
    engine = AlertEngine(..., listeners=[outbox.listener])
    task = asyncio.create_task(outbox.run(stop))

Why it is shaped this way:

- One entry per (notifier, alert id, transition), stored under a key made of those three, with
  ``set_if_absent``. Enqueuing the same transition twice (a replay after a restart) stores it once.
- An entry is deleted only after the receiver accepted it (2xx), and its key is then marked
  delivered for ``delivered_ttl``; a replayed transition whose key is marked is not stored again,
  so a restart never re-sends. A crash between send and mark re-sends once: at least once.
- Per (notifier, alert) only the earliest transition is in flight, so a resolve never overtakes
  its trigger; a transition older than one already delivered is dropped.
- Failures the receiver may get over (refused, timeout, 5xx, 429) back off per entry by the
  one retry policy (:mod:`monitor.core.retry`: exponential, jittered, at least the receiver's
  ``Retry-After`` up to ``retry_after_max``); others, and entries older than
  ``give_up_after``, are dropped with an error log.
- Sending takes a lease key, so two alerting replicas on one Redis do not send the same entry.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from alerting.models import AlertEvent, AlertTransition
from alerting.notifiers.base import NotifierError
from alerting.notifiers.routing import Router
from monitor.core.logs import log_context
from monitor.core.metrics import Metrics
from monitor.core.retry import BackoffSettings, RetryPolicy
from monitor.core.state import StateStore

logger = logging.getLogger(__name__)

NS_PENDING = "outbox"
NS_DELIVERED = "outbox_delivered"
NS_LEASE = "outbox_lease"

_ORDER = {AlertTransition.OPENED: 0, AlertTransition.UPDATED: 1, AlertTransition.RESOLVED: 2}


class OutboxConfig(BackoffSettings):
    """Delivery timing and retention."""

    model_config = ConfigDict(extra="forbid")

    transitions: frozenset[AlertTransition] = Field(
        default=frozenset({AlertTransition.OPENED, AlertTransition.RESOLVED}),
        description="Transitions that notify; updates change an alert's end, not who to page.",
    )
    backoff_base: float = Field(default=1.0, gt=0, description="First retry delay, seconds.")
    backoff_max: float = Field(default=300.0, gt=0, description="Longest retry delay, seconds.")
    give_up_after: float = Field(
        default=24 * 3600, gt=0, description="Drop an entry still undelivered this long, seconds."
    )
    delivered_ttl: float = Field(
        default=7 * 24 * 3600,
        gt=0,
        description="How long a delivered key is remembered, so replays within it are ignored.",
    )
    lease_ttl: float = Field(
        default=120.0, gt=0, description="Longest one send may hold its entry (> notifier timeout)."
    )
    poll_interval: float = Field(
        default=0.5, gt=0, le=1.0, description="Seconds between scans for due entries."
    )
    max_in_flight: int = Field(default=16, ge=1, description="Concurrent sends.")
    shutdown_timeout: float = Field(
        default=5.0, ge=0, description="Seconds sends in flight get to finish on stop."
    )

    @property
    def retry(self) -> RetryPolicy:
        """The delay of each entry's next attempt; entries retry until ``give_up_after``."""
        return self.retry_policy()


class OutboxEntry(BaseModel):
    """One transition waiting for one notifier, as stored."""

    model_config = ConfigDict(extra="forbid")

    notifier: str
    event: AlertEvent
    enqueued_at: float
    attempts: int = 0
    next_at: float = 0.0
    last_error: str | None = None

    @property
    def key(self) -> str:
        return entry_key(self.notifier, self.event.alert.id, self.event.transition)

    @property
    def stream(self) -> tuple[str, str]:
        """Entries of one stream are delivered one at a time, in transition order."""
        return (self.notifier, self.event.alert.id)

    @property
    def order(self) -> tuple[int, float]:
        return (_ORDER[self.event.transition], self.enqueued_at)


def entry_key(notifier: str, alert_id: str, transition: AlertTransition) -> str:
    return f"{notifier}|{alert_id}|{transition.value}"


class OutboxMetrics:
    """The outbox's view of the delivery families, which live in :class:`Metrics`.

    >>> metrics = OutboxMetrics(metrics=Metrics(CollectorRegistry()))  # a process's families
    >>> metrics = OutboxMetrics(CollectorRegistry())  # a test's own registry
    """

    def __init__(
        self, registry: CollectorRegistry | None = None, *, metrics: Metrics | None = None
    ) -> None:
        families = metrics or Metrics(registry)
        self.delivered = families.notifications_delivered
        self.failures = families.notification_failures
        self.dropped = families.notifications_dropped
        self.pending = families.outbox_pending
        self.errors = families.alerting_errors


class Outbox:
    """Stores transitions per notifier and delivers them until each is accepted."""

    def __init__(
        self,
        state: StateStore,
        notifiers: Router,
        metrics: OutboxMetrics | None = None,
        config: OutboxConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.router = notifiers
        self.metrics = metrics
        self.config = config or OutboxConfig()
        self.retry = self.config.retry
        self.clock = clock
        self._owner = uuid.uuid4().hex
        self._wake = asyncio.Event()

    async def listener(self, event: AlertEvent) -> None:
        """AlertEngine listener: stores what pages (not what a silence holds back).

        A state store error propagates so the caller can retry.
        """
        if not event.pages:
            logger.debug("outbox: %s %s is silenced; not paging", event.alert.id, event.transition)
            return
        await self.enqueue(event)

    async def enqueue(self, event: AlertEvent) -> int:
        """Store the event once per routed notifier; returns how many entries are new."""
        if event.transition not in self.config.transitions:
            return 0
        stored = 0
        for name in self.router.targets(event):
            if await self._superseded(name, event):
                continue
            entry = OutboxEntry(notifier=name, event=event, enqueued_at=self.clock())
            if await self.state.set_if_absent(NS_PENDING, entry.key, entry.model_dump_json()):
                stored += 1
        if stored:
            self._wake.set()
        return stored

    async def pending(self) -> list[OutboxEntry]:
        """Every stored entry (unreadable ones are dropped with a warning)."""
        entries = []
        for key, raw in (await self.state.items(NS_PENDING)).items():
            try:
                entries.append(OutboxEntry.model_validate_json(raw))
            except ValidationError as exc:
                logger.warning("outbox: dropping unreadable entry %s: %s", key, exc)
                await self.state.delete(NS_PENDING, key)
        if self.metrics:
            self.metrics.pending.set(len(entries))
        return entries

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; sends in flight then get ``shutdown_timeout``."""
        in_flight: dict[str, asyncio.Task[None]] = {}
        try:
            while not stop.is_set():
                try:
                    await self._dispatch(in_flight)
                except Exception:
                    logger.exception("outbox: scan failed; retrying")
                    self._count_error()
                await self._sleep(stop)
        finally:
            await self._drain(in_flight)

    async def _superseded(self, notifier: str, event: AlertEvent) -> bool:
        """True when this transition, or a later one of the same alert, was delivered."""
        later = [t for t in AlertTransition if _ORDER[t] >= _ORDER[event.transition]]
        for transition in later:
            key = entry_key(notifier, event.alert.id, transition)
            if await self.state.get(NS_DELIVERED, key) is not None:
                return True
        return False

    async def _dispatch(self, in_flight: dict[str, asyncio.Task[None]]) -> None:
        now = self.clock()
        for entry in heads(await self.pending()):
            if len(in_flight) >= self.config.max_in_flight:
                return
            if entry.key in in_flight or entry.next_at > now:
                continue
            task = asyncio.create_task(self._deliver(entry), name=f"outbox:{entry.key}")
            in_flight[entry.key] = task
            task.add_done_callback(functools.partial(self._done, in_flight, entry.key))

    def _done(
        self, in_flight: dict[str, asyncio.Task[None]], key: str, _task: asyncio.Task[None]
    ) -> None:
        in_flight.pop(key, None)
        self._wake.set()

    async def _sleep(self, stop: asyncio.Event) -> None:
        """Until stop, new work, or the next scan, whichever comes first."""
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(
                waiters, timeout=self.config.poll_interval, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
        self._wake.clear()

    async def _drain(self, in_flight: dict[str, asyncio.Task[None]]) -> None:
        tasks = list(in_flight.values())
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=self.config.shutdown_timeout)
        for task in late:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _deliver(self, entry: OutboxEntry) -> None:
        """Send one entry under a lease; never raises (this is a task's boundary)."""
        alert = entry.event.alert
        with log_context(channel=alert.channel_id, detector=alert.detector, alert_id=alert.id):
            await self._deliver_now(entry)

    async def _deliver_now(self, entry: OutboxEntry) -> None:
        key = entry.key
        try:
            if not await self.state.set_if_absent(
                NS_LEASE, key, self._owner, ttl=self.config.lease_ttl
            ):
                return  # another replica is sending it
            try:
                await self._send(entry)
            finally:
                await self.state.delete(NS_LEASE, key)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("outbox: delivering %s failed; it stays pending", key)
            self._count_error()

    def _count_error(self) -> None:
        if self.metrics:
            self.metrics.errors.labels(where="outbox").inc()

    async def _send(self, entry: OutboxEntry) -> None:
        key = entry.key
        if await self.state.get(NS_DELIVERED, key) is not None:
            await self.state.delete(NS_PENDING, key)  # sent and marked before a crash
            return
        raw = await self.state.get(NS_PENDING, key)
        if raw is None:
            return  # delivered meanwhile (by another replica, or the scan read it stale)
        entry = OutboxEntry.model_validate_json(raw)
        if entry.next_at > self.clock():
            return  # a failure since the scan pushed it back
        notifier = self.router.get(entry.notifier)
        if notifier is None:
            await self._drop(entry, "unknown_notifier", "no notifier of that name is configured")
            return
        try:
            await notifier.send(entry.event)
        except NotifierError as exc:
            await self._failed(entry, exc)
            return
        await self.state.set(NS_DELIVERED, key, str(self.clock()), ttl=self.config.delivered_ttl)
        await self.state.delete(NS_PENDING, key)
        logger.info("outbox: %s delivered after %d attempt(s)", key, entry.attempts + 1)
        if self.metrics:
            self.metrics.delivered.labels(notifier=entry.notifier).inc()

    async def _failed(self, entry: OutboxEntry, exc: NotifierError) -> None:
        if self.metrics:
            self.metrics.failures.labels(
                notifier=entry.notifier, retriable=str(exc.retriable).lower()
            ).inc()
        if not exc.retriable:
            await self._drop(entry, "refused", str(exc))
            return
        if self.clock() - entry.enqueued_at > self.config.give_up_after:
            await self._drop(entry, "expired", f"still failing after give_up_after: {exc}")
            return
        entry.attempts += 1
        delay = self.retry.delay(entry.attempts, retry_after=exc.retry_after)
        entry.next_at = self.clock() + delay
        entry.last_error = str(exc)
        await self.state.set(NS_PENDING, entry.key, entry.model_dump_json())
        asked = "" if exc.retry_after is None else f" (Retry-After {exc.retry_after:g}s)"
        logger.warning(
            "outbox: %s attempt %d failed, retrying in %.1fs%s: %s",
            entry.key,
            entry.attempts,
            delay,
            asked,
            exc,
        )

    async def _drop(self, entry: OutboxEntry, reason: str, detail: str) -> None:
        await self.state.delete(NS_PENDING, entry.key)
        logger.error("outbox: giving up on %s (%s): %s", entry.key, reason, detail)
        if self.metrics:
            self.metrics.dropped.labels(notifier=entry.notifier, reason=reason).inc()


def heads(entries: Iterable[OutboxEntry]) -> list[OutboxEntry]:
    """The earliest entry of each (notifier, alert): the only one that may be sent now."""
    first: dict[tuple[str, str], OutboxEntry] = {}
    for entry in entries:
        current = first.get(entry.stream)
        if current is None or entry.order < current.order:
            first[entry.stream] = entry
    return sorted(first.values(), key=lambda e: e.enqueued_at)
